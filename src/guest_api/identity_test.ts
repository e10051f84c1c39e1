import assert from "node:assert/strict";
import { MacMismatchError } from "./errors.ts";
import { identifyGuest, isLoopback, macMismatch, peerIpv4 } from "./identity.ts";
import { testPool } from "../_fixtures.ts";
import type { Logger } from "../log/log.ts";
import type { Neighbour } from "./neighbours.ts";
import { InstanceStore } from "../store/store.ts";

async function withGuest(body: (store: InstanceStore, ipv4: string) => Promise<void>) {
  const kv = await Deno.openKv(":memory:");
  try {
    const pool = testPool("10.9.0.0", 24);
    const store = new InstanceStore(kv, { pool, location: "test" });
    const { instance } = await store.upsert({
      uuid: "0f0f0f0f-0000-4000-8000-000000000001",
      name: "bravo",
      mac: "52:54:00:00:00:0b",
      vcpus: 1,
      memoryMiB: 512,
      metadata: {},
      tags: {},
    });
    await body(store, instance.ipv4);
  } finally {
    kv.close();
  }
}

function table(entries: Neighbour[]) {
  return (ipv4: string) => Promise.resolve(entries.filter((entry) => entry.ipv4 === ipv4));
}

function recordingLog(lines: string[]): Logger {
  const push = (line: string) => lines.push(line);
  return { debug: push, info: push, warning: push, error: push };
}

Deno.test("peerIpv4() unwraps IPv4-mapped addresses and isLoopback() knows both loopbacks", () => {
  assert.equal(peerIpv4("::ffff:10.0.0.5"), "10.0.0.5");
  assert.equal(peerIpv4("10.0.0.5"), "10.0.0.5");
  assert.ok(isLoopback("::ffff:127.0.0.1") && isLoopback("::1"));
  assert.ok(!isLoopback("127.0.0.2"));
});

Deno.test("identifyGuest() without verify_mac trusts the address and never reads the table", async () => {
  await withGuest(async (store, ipv4) => {
    const neighbours = () => Promise.reject(new Error("must not be called"));
    assert.equal((await identifyGuest(store, ipv4, { neighbours }))?.name, "bravo");
    assert.equal(await identifyGuest(store, "10.9.0.200", { verifyMac: true, neighbours }), null);
  });
});

Deno.test("identifyGuest() with verify_mac accepts the record's MAC and refuses another or none with 403", async () => {
  await withGuest(async (store, ipv4) => {
    const lines: string[] = [];
    const log = recordingLog(lines);
    const real = table([{ ipv4, mac: "52:54:00:00:00:0b", device: "br-mds" }]);
    assert.equal(
      (await identifyGuest(store, `::ffff:${ipv4}`, { verifyMac: true, neighbours: real, log }))?.name,
      "bravo",
    );

    const impostor = table([{ ipv4, mac: "02:00:00:00:00:01", device: "br-mds" }]);
    await assert.rejects(
      identifyGuest(store, ipv4, { verifyMac: true, neighbours: impostor, log }),
      (error: unknown) =>
        error instanceof MacMismatchError && /02:00:00:00:00:01/.test(error.message) &&
        /52:54:00:00:00:0b/.test(error.message) && !error.message.includes("\n"),
    );
    await assert.rejects(
      identifyGuest(store, ipv4, { verifyMac: true, neighbours: table([]), log }),
      (error: unknown) => error instanceof MacMismatchError && /no neighbour table entry/.test(error.message),
    );
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^verify_mac: refused /);
  });
});

Deno.test("macMismatch() refuses when any complete entry for the address has another MAC", async () => {
  const instance = { name: "bravo", mac: "52:54:00:00:00:0B" };
  const both = table([
    { ipv4: "10.9.0.2", mac: "52:54:00:00:00:0b", device: "br-mds" },
    { ipv4: "10.9.0.2", mac: "02:00:00:00:00:01", device: "eth1" },
  ]);
  assert.match((await macMismatch(instance, "10.9.0.2", both))!, /02:00:00:00:00:01 \(on eth1\)/);
  const broken = () => Promise.reject(new Error("permission denied"));
  assert.match((await macMismatch(instance, "10.9.0.2", broken))!, /cannot read the neighbour table/);
});

Deno.test("identifyGuest() with verify_mac = auto checks where the table is readable, and says once when it is not", async () => {
  await withGuest(async (store, ipv4) => {
    const impostor = table([{ ipv4, mac: "52:54:00:66:66:66", device: "br-mds" }]);
    await assert.rejects(identifyGuest(store, ipv4, { verifyMac: "auto", neighbours: impostor }), MacMismatchError);
    const real = table([{ ipv4, mac: "52:54:00:00:00:0b", device: "br-mds" }]);
    assert.equal((await identifyGuest(store, ipv4, { verifyMac: "auto", neighbours: real }))?.name, "bravo");
    const unreadable: Error[] = [];
    const broken = () => Promise.reject(new Error("ip: not found"));
    const found = await identifyGuest(store, ipv4, {
      verifyMac: "auto",
      neighbours: broken,
      onUnreadable: (error) => unreadable.push(error),
    });
    assert.equal(found?.name, "bravo");
    assert.deepEqual(unreadable.map((error) => error.message), ["ip: not found"]);
  });
});
