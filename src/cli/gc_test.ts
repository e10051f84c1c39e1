import assert from "node:assert/strict";
import { collectGarbage, formatDuration, parseDuration, selectGarbage, virshDomainNames } from "./gc.ts";
import type { Instance } from "../store/instance.ts";
import { parseIpv4 } from "../ipam/ipv4.ts";
import { InstanceStore } from "../store/store.ts";

const DAY = 86_400_000;

async function withStore(
  now: { value: Date },
  run: (store: InstanceStore) => Promise<void>,
) {
  const kv = await Deno.openKv(":memory:");
  try {
    const pool = {
      first: parseIpv4("10.0.0.2")!,
      last: parseIpv4("10.0.0.254")!,
      reserved: new Set<number>(),
    };
    const store = new InstanceStore(kv, {
      pool,
      location: "test",
      now: () => now.value,
    });
    await run(store);
  } finally {
    kv.close();
  }
}

function registration(name: string, n: number) {
  return {
    uuid: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    name,
    mac: `52:54:00:00:00:${String(n).padStart(2, "0")}`,
    vcpus: 1,
    memoryMiB: 512,
    metadata: {},
    tags: {},
  };
}

async function names(store: InstanceStore): Promise<string[]> {
  const all: string[] = [];
  for await (const instance of store.list()) all.push(instance.name);
  return all.sort();
}

Deno.test("collectGarbage() removes instances whose domains virsh no longer lists and releases their addresses", async () => {
  const now = { value: new Date("2026-01-10T00:00:00Z") };
  await withStore(now, async (store) => {
    await store.upsert(registration("web01", 1));
    await store.upsert(registration("web02", 2));
    const gone = (await store.upsert(registration("gone01", 3))).instance;
    const result = await collectGarbage(store, {
      listDomains: () => Promise.resolve(["web01", "web02", "unmanaged"]),
      now: () => now.value,
    });
    assert.deepEqual(
      result.removed.map((candidate) => candidate.instance.name),
      ["gone01"],
    );
    assert.equal(result.total, 3);
    assert.deepEqual(await names(store), ["web01", "web02"]);
    assert.equal(await store.allocatedCount(), 2);
    assert.equal(await store.getByIpv4(gone.ipv4), null);
    // The freed address is handed out again.
    await store.upsert(registration("web03", 4));
    assert.equal(await store.allocatedCount(), 3);
  });
});

Deno.test("collectGarbage() without virsh removes only instances stopped for longer than the age", async () => {
  const now = { value: new Date("2026-01-01T00:00:00Z") };
  await withStore(now, async (store) => {
    const old = (await store.upsert(registration("old", 1))).instance;
    const recent = (await store.upsert(registration("recent", 2))).instance;
    await store.upsert(registration("running", 3));
    await store.setState(old.uuid, "stopped");
    now.value = new Date(now.value.getTime() + 8 * DAY);
    await store.setState(recent.uuid, "stopped");
    now.value = new Date(now.value.getTime() + DAY);

    const dry = await collectGarbage(store, {
      olderThanMs: parseDuration("7d"),
      now: () => now.value,
      dryRun: true,
    });
    assert.deepEqual(dry.removed.map((candidate) => candidate.instance.name), [
      "old",
    ]);
    assert.match(
      dry.removed[0]!.reason,
      /^stopped since 2026-01-01T00:00:00.000Z \(9d\)$/,
    );
    assert.deepEqual(await names(store), ["old", "recent", "running"]);

    await collectGarbage(store, {
      olderThanMs: parseDuration("7d"),
      now: () => now.value,
    });
    assert.deepEqual(await names(store), ["recent", "running"]);
  });
});

Deno.test("collectGarbage() refuses an empty domain list while instances exist unless forced", async () => {
  const now = { value: new Date("2026-01-01T00:00:00Z") };
  await withStore(now, async (store) => {
    await store.upsert(registration("web01", 1));
    const listDomains = () => Promise.resolve([]);
    await assert.rejects(
      collectGarbage(store, { listDomains }),
      /libvirt listed no domains.*--force/,
    );
    assert.deepEqual(await names(store), ["web01"]);
    const forced = await collectGarbage(store, { listDomains, force: true });
    assert.equal(forced.removed.length, 1);
    assert.deepEqual(await names(store), []);
  });
});

Deno.test("selectGarbage() with virsh and an age keeps gone domains that changed recently", () => {
  const now = new Date("2026-01-10T00:00:00Z");
  const instance = (name: string, updatedAt: string): Instance => ({
    uuid: name,
    name,
    instanceId: "i-0",
    mac: "52:54:00:00:00:01",
    ipv4: "10.0.0.2",
    vcpus: null,
    memoryMiB: null,
    metadata: {},
    tags: {},
    location: "test",
    state: "registered",
    createdAt: updatedAt,
    updatedAt,
    stoppedAt: null,
  });
  const chosen = selectGarbage([
    instance("fresh", "2026-01-09T12:00:00Z"),
    instance("stale", "2026-01-01T00:00:00Z"),
    instance("listed", "2026-01-01T00:00:00Z"),
  ], { domains: new Set(["listed"]), olderThanMs: DAY, now });
  assert.deepEqual(chosen.map((candidate) => candidate.instance.name), [
    "stale",
  ]);
});

Deno.test("virshDomainNames() runs virsh list --all --name and drops blank lines", async () => {
  const calls: string[][] = [];
  const run = (program: string, args: string[]) => {
    calls.push([program, ...args]);
    return Promise.resolve("web01\nweb02\n\n");
  };
  assert.deepEqual(await virshDomainNames({ run }), ["web01", "web02"]);
  assert.deepEqual(await virshDomainNames({ run, connect: "qemu:///system" }), [
    "web01",
    "web02",
  ]);
  assert.deepEqual(calls, [
    ["virsh", "list", "--all", "--name"],
    ["virsh", "--connect", "qemu:///system", "list", "--all", "--name"],
  ]);
});

Deno.test("parseDuration() reads units and rejects anything else", () => {
  assert.equal(parseDuration("7d"), 7 * DAY);
  assert.equal(parseDuration("1d12h"), 1.5 * DAY);
  assert.equal(parseDuration("90m"), 90 * 60_000);
  assert.equal(parseDuration("2w"), 14 * DAY);
  assert.throws(() => parseDuration("7"), TypeError);
  assert.throws(
    () => parseDuration("seven days"),
    /Cannot parse duration "seven days"/,
  );
  assert.equal(formatDuration(9 * DAY + 4 * 3_600_000 + 5_000), "9d 4h");
});
