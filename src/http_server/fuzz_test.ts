import assert from "node:assert/strict";
import { serveGuests } from "./mod.ts";
import { exchange, statusOf } from "./_raw_client_test_helper.ts";

const SEEDS = [
  "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: Cloud-Init/22.4.2\r\n\r\n",
  "POST /phone-home HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nhostname=x1",
  "PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n",
  "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
];

const NASTY = [0x00, 0x0a, 0x0d, 0x20, 0x09, 0x3a, 0x7f, 0xff, 0x2c, 0x30, 0x2d, 0x48];

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed request with a few bytes replaced, inserted or removed. */
function mutate(next: () => number): Uint8Array {
  const bytes = Array.from(SEEDS[Math.floor(next() * SEEDS.length)]!, (c) => c.charCodeAt(0));
  const edits = 1 + Math.floor(next() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(next() * bytes.length);
    const byte = next() < 0.7 ? NASTY[Math.floor(next() * NASTY.length)]! : Math.floor(next() * 256);
    const kind = next();
    if (kind < 0.4) bytes[at] = byte;
    else if (kind < 0.7) bytes.splice(at, 0, byte);
    else bytes.splice(at, 1);
  }
  return Uint8Array.from(bytes);
}

Deno.test("mutated requests get an answer or a close, never a 5xx but 505, and the server keeps serving", async () => {
  const server = serveGuests(
    { hostname: "127.0.0.1", port: 0, limits: { headTimeoutMs: 300, bodyTimeoutMs: 300, idleTimeoutMs: 300 } },
    async (request) => new Response(`ok ${(await request.text()).length}`),
  );
  try {
    const next = random(20261201);
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 8; batch++) {
      const seen = await Promise.all(Array.from({ length: 25 }, () => exchange(server.addr.port, mutate(next), 2000)));
      for (const { text, closed } of seen) {
        assert(closed, `a mutated request left its connection open: ${JSON.stringify(text.slice(0, 60))}`);
        for (const line of text.split("\r\n").filter((line) => line.startsWith("HTTP/1.1 "))) {
          const status = statusOf(line);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          assert(status < 500 || status === 505, `answered ${line}`);
        }
      }
    }
    assert((statuses.get(400) ?? 0) > 0, `statuses ${JSON.stringify([...statuses])}`);
    const after = await fetch(`http://127.0.0.1:${server.addr.port}/`);
    assert.equal(await after.text(), "ok 0");
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});
