import assert from "node:assert/strict";
import { buildPool, parseIpv4, poolSize } from "../ipam/ipv4.ts";
import { testPool } from "../_fixtures.ts";
import { AddressConflictError, InstanceStore, PoolFullError, type Registration } from "./mod.ts";
import type { KeyValueBackend } from "./backend.ts";
import { type BackendCase, backendSuite, snapshotKeys as snapshot } from "../../tests/_store_backends.ts";

function registration(n: number, overrides: Partial<Registration> = {}): Registration {
  const hex = n.toString(16).padStart(12, "0");
  return {
    uuid: `${hex.slice(4)}-0000-4000-8000-${hex}`,
    name: `vm${n}`,
    mac: `52:54:00:${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10, 12)}`,
    vcpus: 1,
    memoryMiB: 512,
    metadata: {},
    tags: {},
    ...overrides,
  };
}

function storeOn(
  backend: KeyValueBackend,
  poolOptions: { net: string; prefix: number; gateway: string; listen: string },
): InstanceStore {
  const pool = buildPool({
    network: { address: parseIpv4(poolOptions.net)!, prefix: poolOptions.prefix },
    gateway: poolOptions.gateway,
    listenAddress: poolOptions.listen,
  });
  return new InstanceStore(backend, { pool, location: "test" });
}

const SMALL = { net: "10.9.0.0", prefix: 29, gateway: "10.9.0.1", listen: "10.9.0.2" };
const LARGE = { net: "10.8.0.0", prefix: 16, gateway: "10.8.0.1", listen: "169.254.169.254" };

const cases: BackendCase[] = [];
cases.push({
  name: "upsert() never hands out the network, broadcast, gateway or listen address",
  body: async ({ backend }) => {
    const store = storeOn(backend, SMALL);
    // 10.9.0.0/29: hosts .1-.6; .1 gateway and .2 listen are reserved → .3-.6
    assert.equal(poolSize(store.pool), 4);
    const addresses = [];
    for (let n = 1; n <= 4; n++) addresses.push((await store.upsert(registration(n))).instance.ipv4);
    assert.deepEqual(addresses.sort(), ["10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]);
  },
});

cases.push({
  name: "upsert() of a known domain keeps its address and instance-id",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const first = await store.upsert(registration(1));
    await store.upsert(registration(2));
    const again = await store.upsert(registration(1, { vcpus: 4, metadata: { role: "db" } }));
    assert.equal(first.created, true);
    assert.equal(again.created, false);
    assert.equal(again.instance.ipv4, first.instance.ipv4);
    assert.equal(again.instance.instanceId, first.instance.instanceId);
    assert.equal(again.instance.instanceId, "i-00000001000040008000000000000001");
    assert.equal(again.instance.vcpus, 4);
    assert.equal((await store.getByIpv4(first.instance.ipv4))?.metadata.role, "db");
  },
});

cases.push({
  name: "upsert() gives 200 concurrent uploads 200 distinct addresses",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.upsert(registration(i + 1))),
    );
    const addresses = new Set(results.map((result) => result.instance.ipv4));
    assert.equal(addresses.size, 200);
    assert.equal(await store.allocatedCount(), 200);
    for (const result of results) {
      assert.equal((await store.getByIpv4(result.instance.ipv4))?.uuid, result.instance.uuid);
    }
  },
});

cases.push({
  name: "two stores sharing one store never allocate the same address",
  shared: true,
  body: async ({ backend, openOther }) => {
    const pool = testPool("10.7.0.0", 24);
    const a = new InstanceStore(backend, { pool, location: "a" });
    const b = new InstanceStore(await openOther(), { pool, location: "b" });
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).upsert(registration(i + 1))),
    );
    assert.equal(new Set(results.map((r) => r.instance.ipv4)).size, 60);
    const seenByA = [];
    for await (const instance of a.list()) seenByA.push(instance.location);
    assert.equal(seenByA.length, 60);
    assert.ok(seenByA.includes("b"));
    assert.equal(await a.allocatedCount(), 60);
  },
});

cases.push({
  name: "upsert() on a full pool is a 507 and changes nothing",
  body: async ({ backend }) => {
    const store = storeOn(backend, SMALL);
    const kv = backend;
    for (let n = 1; n <= 4; n++) await store.upsert(registration(n));
    const before = await snapshot(kv);
    await assert.rejects(
      () => store.upsert(registration(5)),
      (error) => error instanceof PoolFullError && /pool is full/.test(error.message),
    );
    assert.deepEqual(await snapshot(kv), before);
    // A known domain still re-uploads on a full pool.
    assert.equal((await store.upsert(registration(2))).created, false);
  },
});

cases.push({
  name: "upsert() refuses a MAC that belongs to another domain with 409, changing nothing",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const kv = backend;
    await store.upsert(registration(1));
    const before = await snapshot(kv);
    await assert.rejects(
      () => store.upsert(registration(2, { mac: registration(1).mac })),
      (error) => error instanceof AddressConflictError && /"vm1"/.test(error.message),
    );
    assert.deepEqual(await snapshot(kv), before);
  },
});

cases.push({
  name: "a redefined domain with the same name replaces the old record and keeps its address",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const old = await store.upsert(registration(1));
    const redefined = await store.upsert(registration(9, { name: "vm1" }));
    assert.equal(redefined.instance.ipv4, old.instance.ipv4);
    assert.notEqual(redefined.instance.instanceId, old.instance.instanceId);
    assert.equal(await store.getByUuid(old.instance.uuid), null);
    assert.equal((await store.getByName("vm1"))?.uuid, redefined.instance.uuid);
    assert.equal(await store.getByMac(registration(1).mac), null);
    assert.equal(await store.allocatedCount(), 1);
  },
});

cases.push({
  name: "delete() releases the address, and the next upload can take it",
  body: async ({ backend }) => {
    const store = storeOn(backend, SMALL);
    const instances = [];
    for (let n = 1; n <= 4; n++) instances.push((await store.upsert(registration(n))).instance);
    await backend.commit([], [{ type: "set", key: ["boots", instances[1]!.uuid], value: { boots: [] } }]);
    assert.equal(await store.delete(instances[1]!.uuid), true);
    assert.equal(await store.getByIpv4(instances[1]!.ipv4), null);
    assert.equal((await backend.getMany([["boots", instances[1]!.uuid]]))[0]?.value ?? null, null, "its boots go too");
    assert.equal(await store.getByName("vm2"), null);
    const next = await store.upsert(registration(7));
    assert.equal(next.instance.ipv4, instances[1]!.ipv4);
    assert.equal(await store.delete("ffffffff-0000-4000-8000-ffffffffffff"), false);
  },
});

cases.push({
  name: "find() resolves a name, UUID, instance-id, MAC and address to the same instance",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const { instance } = await store.upsert(registration(3));
    await store.upsert(registration(4));
    for (const ref of [instance.name, instance.uuid, instance.instanceId, instance.mac, instance.ipv4]) {
      assert.equal((await store.find(ref))?.uuid, instance.uuid, ref);
    }
    assert.equal(await store.find("nope"), null);
  },
});

cases.push({
  name: "setState() marks an instance stopped and keeps its address",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const { instance } = await store.upsert(registration(1));
    const stopped = await store.setState(instance.uuid, "stopped");
    assert.equal(stopped?.state, "stopped");
    assert.ok(stopped?.stoppedAt);
    assert.equal((await store.getByIpv4(instance.ipv4))?.state, "stopped");
  },
});

cases.push({
  name: "getByIpv4() answers a change made through the same store at once",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const { instance } = await store.upsert(registration(1, { metadata: { role: "web" } }));
    assert.equal((await store.getByIpv4(instance.ipv4))?.metadata.role, "web");
    assert.equal((await store.getByIpv4(instance.ipv4))?.metadata.role, "web");

    await store.upsert(registration(1, { metadata: { role: "db" } }));
    assert.equal((await store.getByIpv4(instance.ipv4))?.metadata.role, "db");

    await store.setState(instance.uuid, "stopped");
    assert.equal((await store.getByIpv4(instance.ipv4))?.state, "stopped");

    // Redefined under the same name: the new domain holds the address.
    const { instance: redefined } = await store.upsert(registration(2, { name: "vm1" }));
    assert.equal(redefined.ipv4, instance.ipv4);
    assert.equal((await store.getByIpv4(instance.ipv4))?.uuid, redefined.uuid);

    await store.delete(redefined.uuid);
    assert.equal(await store.getByIpv4(instance.ipv4), null);
  },
});

cases.push({
  name: "getByIpv4() hands out a frozen record, so no caller can change another's copy",
  body: async ({ backend }) => {
    const store = storeOn(backend, LARGE);
    const { instance } = await store.upsert(registration(1, { metadata: { role: "web" }, tags: { a: "b" } }));
    const found = (await store.getByIpv4(instance.ipv4))!;
    assert.ok(Object.isFrozen(found) && Object.isFrozen(found.metadata) && Object.isFrozen(found.tags));
    assert.throws(() => (found.metadata as Record<string, string>).role = "db", TypeError);
  },
});

cases.push({
  name: "getByIpv4() sees another process's changes: new guests at once, others once its cache expires",
  shared: true,
  body: async ({ backend, openOther }) => {
    const pool = testPool("10.7.0.0", 24);
    // Stores on one space stand for processes sharing a KV file, or hosts sharing etcd.
    const a = new InstanceStore(backend, { pool, location: "a", addressCacheTtlMs: 50 });
    const b = new InstanceStore(await openOther(), { pool, location: "b" });
    const uncached = new InstanceStore(await openOther(), { pool, location: "c", addressCacheTtlMs: 0 });

    const { instance } = await b.upsert(registration(1, { metadata: { role: "web" } }));
    assert.equal((await a.getByIpv4(instance.ipv4))?.metadata.role, "web");
    await b.upsert(registration(1, { metadata: { role: "db" } }));
    assert.equal((await uncached.getByIpv4(instance.ipv4))?.metadata.role, "db");
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal((await a.getByIpv4(instance.ipv4))?.metadata.role, "db");

    await b.delete(instance.uuid);
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(await a.getByIpv4(instance.ipv4), null);

    // Strangers are never cached: a guest registered elsewhere is known at once.
    const { instance: next } = await b.upsert(registration(2), { ipv4: instance.ipv4 });
    assert.equal((await a.getByIpv4(instance.ipv4))?.uuid, next.uuid);
  },
});

cases.push({
  name: "postPassword() keeps one of posts racing from two processes; an upload keeps it, setPassword(null) removes it",
  shared: true,
  body: async ({ backend, openOther }) => {
    const store = storeOn(backend, LARGE);
    const other = storeOn(await openOther(), LARGE);
    const { instance } = await store.upsert(registration(1));
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? other : store).postPassword(instance.uuid, `cG9zdA${i}`)),
    );
    assert.deepEqual(outcomes.filter((outcome) => outcome === "kept").length, 1);
    assert.deepEqual(outcomes.filter((outcome) => outcome === "conflict").length, 5);
    const kept = (await store.getByUuid(instance.uuid))?.postedPassword?.encrypted;
    assert.equal(kept, `cG9zdA${outcomes.indexOf("kept")}`);
    await other.upsert(registration(1, { vcpus: 2 }));
    assert.equal((await store.getByUuid(instance.uuid))?.postedPassword?.encrypted, kept);
    assert.equal(await store.postPassword("00000000-0000-4000-8000-000000000000", "eA"), "unknown");
    await store.setPassword(instance.uuid, null);
    assert.equal((await store.getByUuid(instance.uuid))?.postedPassword, undefined);
  },
});

backendSuite("InstanceStore", cases);
