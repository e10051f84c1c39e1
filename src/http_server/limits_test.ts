import assert, { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type RefusalReport, serveGuests, type ServerLimits } from "./mod.ts";
import { exchange, readResponses, readUntilClosed, send, statusOf } from "./_raw_client_test_helper.ts";

function constantServer(limits: Partial<ServerLimits>, reports: RefusalReport[] = []) {
  return serveGuests(
    { hostname: "127.0.0.1", port: 0, limits, onRefusals: (report) => reports.push(report), reportIntervalMs: 200 },
    async (request) => new Response(`ok ${(await request.text()).length}`),
  );
}

async function connect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

Deno.test("a head past maxHeadBytes is answered 431 (414 for the request line) and closed", async () => {
  const server = constantServer({ maxHeadBytes: 1024 });
  try {
    const big = await exchange(server.addr.port, `GET / HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(2000)}\r\n\r\n`);
    assertEquals([statusOf(big.text), big.closed], [431, true]);
    const line = await exchange(server.addr.port, `GET /${"a".repeat(2000)} HTTP/1.1\r\n\r\n`);
    assertEquals([statusOf(line.text), line.closed], [414, true]);
    assertEquals(server.stats().refused.head_too_large, 2);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("more header fields than maxHeaders are answered 431 and closed", async () => {
  const server = constantServer({ maxHeaders: 4 });
  try {
    const fields = Array.from({ length: 5 }, (_, i) => `X-${i}: ${i}\r\n`).join("");
    const { text, closed } = await exchange(server.addr.port, `GET / HTTP/1.1\r\nHost: a\r\n${fields}\r\n`);
    assertEquals([statusOf(text), closed], [431, true]);
    assertEquals(server.stats().refused.too_many_headers, 1);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("a Content-Length past maxBodyBytes is answered 413 before the body is sent", async () => {
  const server = constantServer({ maxBodyBytes: 1000 });
  try {
    const { text, closed } = await exchange(
      server.addr.port,
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n",
    );
    assertEquals([statusOf(text), closed], [413, true]);
    const chunked = await exchange(
      server.addr.port,
      `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n${
        "a".repeat(1000)
      }\r\n1\r\nb\r\n0\r\n\r\n`,
    );
    assertEquals([statusOf(chunked.text), chunked.closed], [413, true]);
    const fits = await exchange(
      server.addr.port,
      `POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n${"a".repeat(1000)}`,
    );
    assert(fits.text.endsWith("ok 1000"), fits.text);
    assertEquals(server.stats().refused.body_too_large, 2);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("slowloris: a head that does not arrive within headTimeoutMs is closed, as is a silent connection", async () => {
  const server = constantServer({ headTimeoutMs: 300 });
  try {
    const slow = await connect(server.addr.port);
    const silent = await connect(server.addr.port);
    const drip = (async () => {
      // 1.5 s of a byte or two every 100 ms: a timeout that each byte restarted would close it only after that.
      const fields = Array.from({ length: 12 }, (_, i) => `X: ${i}\r\n`);
      for (const piece of ["GET / HT", "TP/1.1\r\n", "Host: a\r\n", ...fields]) {
        await send(slow, piece).catch(() => {});
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const [slowSeen, silentSeen] = await Promise.all([readUntilClosed(slow, 4000), readUntilClosed(silent, 4000)]);
    await drip;
    assert(slowSeen.closed && slowSeen.ms < 1200, `slow head closed after ${slowSeen.ms} ms`);
    assert(silentSeen.closed && silentSeen.ms < 1200, `silent connection closed after ${silentSeen.ms} ms`);
    assertEquals(server.stats().refused.head_timeout, 2);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("a body that does not arrive within bodyTimeoutMs is closed", async () => {
  const server = constantServer({ bodyTimeoutMs: 300 });
  try {
    const conn = await connect(server.addr.port);
    await send(conn, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly a part");
    const seen = await readUntilClosed(conn, 4000);
    assert(seen.closed && seen.ms < 2000, `closed after ${seen.ms} ms`);
    assertEquals(server.stats().refused.body_timeout, 1);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("a kept-alive connection idle past idleTimeoutMs is closed, counted as idle", async () => {
  const server = constantServer({ idleTimeoutMs: 300 });
  try {
    const conn = await connect(server.addr.port);
    await send(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assertEquals((await readResponses(conn, 1)).length, 1);
    const seen = await readUntilClosed(conn, 4000);
    assert(seen.closed && seen.ms < 2000, `closed after ${seen.ms} ms`);
    assertEquals(server.stats().idleClosed, 1);
    assertEquals(server.stats().refused, {});
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("a source at maxConnectionsPerSource gets 503 and a close at once; another source is served", async () => {
  const reports: RefusalReport[] = [];
  const server = constantServer({ maxConnectionsPerSource: 5, headTimeoutMs: 5000 }, reports);
  const held: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 5; i++) held.push(await connect(server.addr.port));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const excess = await Promise.all(Array.from({ length: 20 }, () => exchange(server.addr.port, "", 4000)));
    for (const seen of excess) {
      assert(seen.closed && seen.ms < 2000, `excess connection closed after ${seen.ms} ms`);
      assert(seen.text === "" || statusOf(seen.text) === 503, seen.text);
    }
    assert(excess.some((seen) => statusOf(seen.text) === 503));
    const client = Deno.createHttpClient({ localAddress: "127.0.0.3" });
    const started = performance.now();
    const other = await fetch(`http://127.0.0.1:${server.addr.port}/`, { client });
    assertEquals([other.status, await other.text()], [200, "ok 0"]);
    assert(performance.now() - started < 3000);
    client.close();
    assertEquals(server.stats().refused.source_cap, 20);
    assertEquals(server.stats().openSources >= 1, true);
    // One report for the burst, not one per connection.
    await new Promise((resolve) => setTimeout(resolve, 400));
    assertEquals(reports.length, 1);
    assertEquals(reports[0]!.counts.source_cap, 20);
    assertEquals(reports[0]!.topSources[0], { address: "127.0.0.1", count: 20 });
  } finally {
    for (const conn of held) conn.close();
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("connections beyond maxConnections in all get 503 and a close at once", async () => {
  const server = constantServer({ maxConnections: 3 });
  const held: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 3; i++) held.push(await connect(server.addr.port));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const seen = await exchange(server.addr.port, "", 4000);
    assert(seen.closed && seen.ms < 2000, `closed after ${seen.ms} ms`);
    assertEquals(server.stats().refused.global_cap, 1);
    assertEquals(server.stats().openConnections, 3);
  } finally {
    for (const conn of held) conn.close();
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("maxRequestsPerConnection closes the connection after its last response", async () => {
  const server = constantServer({ maxRequestsPerConnection: 2 });
  try {
    const { text, closed } = await exchange(
      server.addr.port,
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert(closed);
    assertEquals(text.split("HTTP/1.1 200").length - 1, 2);
    assert(text.includes("connection: close"));
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("a guest that does not read its answer is closed after writeTimeoutMs", async () => {
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  const server = serveGuests({ hostname: "127.0.0.1", port: 0, limits: { writeTimeoutMs: 300 } }, () =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          // At most 256 MiB, far more than the socket buffers hold.
          if (sent++ < 4096) controller.enqueue(chunk);
          else controller.close();
        },
      }),
    ));
  try {
    const conn = await connect(server.addr.port);
    await send(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const deadline = performance.now() + 5000;
    while (server.stats().refused.write_timeout !== 1 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertEquals(server.stats().refused.write_timeout, 1);
    assertEquals(server.stats().openConnections, 0);
    assert(sent < 4096);
    conn.close();
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});
