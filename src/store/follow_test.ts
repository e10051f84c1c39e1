import assert from "node:assert/strict";
import { testPool } from "../_fixtures.ts";
import { InstanceStore, type Registration, type StoreEvent, StoreUnavailableError } from "./mod.ts";
import { EtcdBackend } from "./etcd_backend.ts";
import { type EtcdCluster, requireEtcd, startEtcdCluster } from "../../tests/_etcd_cluster.ts";

function registration(n: number): Registration {
  const hex = n.toString(16).padStart(12, "0");
  return {
    uuid: `${hex.slice(4)}-0000-4000-8000-${hex}`,
    name: `vm${n}`,
    mac: `52:54:00:${hex.slice(6, 8)}:${hex.slice(8, 10)}:${hex.slice(10, 12)}`,
    vcpus: 1,
    memoryMiB: 512,
    metadata: {},
    tags: {},
  };
}

/** Two hosts' stores on one cluster, both following; closed by the returned function. */
async function twoHosts(cluster: EtcdCluster) {
  const prefix = `/follow-${crypto.randomUUID()}/`;
  const pool = testPool("10.6.0.0", 16);
  const stop = new AbortController();
  const backends = [0, 1].map(() => new EtcdBackend({ endpoints: cluster.endpoints, prefix, timeoutMs: 1_000 }));
  const [a, b] = backends.map((backend, index) => new InstanceStore(backend, { pool, location: `host${index}` }));
  await a!.follow(stop.signal);
  await b!.follow(stop.signal);
  const close = () => {
    stop.abort();
    for (const backend of backends) backend.close();
  };
  return { a: a!, b: b!, close };
}

/** Resolves with the first event `store` reports that `match` accepts, or rejects after `ms`. */
function nextEvent(store: InstanceStore, match: (event: StoreEvent) => boolean, ms: number): Promise<StoreEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching event within ${ms} ms`)), ms);
    store.subscribe((event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      resolve(event);
    });
  });
}

Deno.test("etcd: a guest registered on host A is served by host B within 1 s, and its deletion seen there", async () => {
  if (await requireEtcd()) return;
  const cluster = await startEtcdCluster(3);
  const { a, b, close } = await twoHosts(cluster);
  try {
    const seen = nextEvent(b, (event) => event.type === "upsert" && event.remote === true, 1_000);
    const started = performance.now();
    const { instance } = await a.upsert(registration(1));
    await seen;
    const propagationMs = performance.now() - started;
    assert.ok(propagationMs < 1_000, `${propagationMs} ms`);
    // Served from B's watch-fed copy: no read of etcd.
    assert.equal((await b.getByIpv4(instance.ipv4))?.location, "host0");
    assert.equal(b.mirrorStatus()?.instances, 1);

    const gone = nextEvent(b, (event) => event.type === "delete" && event.remote === true, 1_000);
    await a.delete(instance.uuid);
    await gone;
    assert.equal(await b.getByIpv4(instance.ipv4), null);
  } finally {
    close();
    await cluster.stop();
  }
});

Deno.test("etcd: with one member killed mid-run nothing acknowledged is lost; without quorum uploads are refused and reads served", async () => {
  if (await requireEtcd()) return;
  const cluster = await startEtcdCluster(3);
  const { a, b, close } = await twoHosts(cluster);
  try {
    const uploads = Array.from({ length: 120 }, (_, i) => (i % 2 ? a : b).upsert(registration(i + 1)));
    setTimeout(() => void cluster.kill(0), 300);
    const settled = await Promise.allSettled(uploads);
    const acknowledged = settled.flatMap((result) => result.status === "fulfilled" ? [result.value.instance] : []);
    assert.ok(acknowledged.length >= 100, `${acknowledged.length} of 120 acknowledged`);
    assert.equal(new Set(acknowledged.map((instance) => instance.ipv4)).size, acknowledged.length);
    for (const instance of acknowledged) {
      assert.equal((await a.find(instance.uuid))?.ipv4, instance.ipv4);
      assert.equal((await b.find(instance.uuid))?.ipv4, instance.ipv4);
    }

    // Quorum lost: one member of three left.
    await cluster.kill(1);
    const started = performance.now();
    await assert.rejects(() => a.upsert(registration(500)), StoreUnavailableError);
    assert.ok(performance.now() - started < 5_000);
    // Both hosts keep serving guests from what they last saw.
    for (const instance of acknowledged.slice(0, 20)) {
      assert.equal((await b.getByIpv4(instance.ipv4))?.uuid, instance.uuid);
      assert.equal((await a.getByIpv4(instance.ipv4))?.uuid, instance.uuid);
    }
  } finally {
    close();
    await cluster.stop();
  }
});
