/**
 * A fleet on etcd: mdserver processes standing for hosts on one real
 * three-member cluster. Uploads spread across hosts never share an address,
 * every acknowledged upload is served by every host, a killed member loses
 * nothing acknowledged, and without quorum uploads are refused with a 503
 * while guests keep being served what was last seen.
 */

import assert from "node:assert/strict";
import { requireEtcd, startEtcdCluster } from "./_etcd_cluster.ts";
import { type FleetHost, guestGet, inParallel, startFleet, stopFleet, uploadTo } from "./_fleet.ts";
import { adminSocketFetch } from "./_harness.ts";

interface Acknowledged {
  n: number;
  ipv4: string;
  instanceId: string;
}

/** Uploads 1..count spread across the hosts, `inFlight` at a time; the acknowledged ones and the refusals. */
async function spreadUploads(hosts: FleetHost[], count: number, inFlight: number) {
  const refused: string[] = [];
  const acknowledged: Acknowledged[] = [];
  await inParallel(count, inFlight, async (index) => {
    const n = index + 1;
    try {
      const { status, body } = await uploadTo(hosts[index % hosts.length]!, n);
      if (status === 200 || status === 201) {
        acknowledged.push({ n, ipv4: String(body.ipv4), instanceId: String(body.instance_id) });
      } else refused.push(`${status} ${JSON.stringify(body)}`);
    } catch (error) {
      refused.push((error as Error).message);
    }
  });
  return { acknowledged, refused };
}

/** Asserts that every host answers every acknowledged guest with its own instance-id. */
async function assertServedEverywhere(hosts: FleetHost[], acknowledged: Acknowledged[]) {
  for (const host of hosts) {
    await inParallel(acknowledged.length, 16, async (index) => {
      const guest = acknowledged[index]!;
      const answer = await guestGet(host, guest.ipv4, "/latest/meta-data/instance-id");
      assert.equal(answer.status, 200, `${host.name} for ${guest.ipv4}: ${answer.text}`);
      assert.equal(answer.text, guest.instanceId, `${host.name} for ${guest.ipv4}`);
    });
  }
}

for (const hostCount of [2, 3]) {
  Deno.test(`fleet: ${hostCount} hosts on etcd, 1,000 concurrent uploads: unique addresses, every guest served by every host`, async () => {
    if (await requireEtcd()) return;
    const dir = await Deno.makeTempDir({ prefix: "mdserver-fleet-" });
    const cluster = await startEtcdCluster(3);
    let hosts: FleetHost[] = [];
    try {
      hosts = await startFleet(dir, cluster.endpoints, hostCount);
      const started = performance.now();
      const { acknowledged, refused } = await spreadUploads(hosts, 1_000, 60);
      const seconds = (performance.now() - started) / 1000;
      assert.deepEqual(refused, []);
      assert.equal(acknowledged.length, 1_000);
      assert.ok(seconds < 120, `1,000 uploads took ${seconds.toFixed(1)} s`);
      assert.equal(new Set(acknowledged.map((guest) => guest.ipv4)).size, 1_000, "an address was handed out twice");
      await assertServedEverywhere(hosts, acknowledged);
      console.log(`${hostCount} hosts: 1,000 uploads in ${seconds.toFixed(1)} s (${(1000 / seconds).toFixed(0)}/s)`);
    } finally {
      await stopFleet(hosts);
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("fleet: a member killed mid-run loses nothing acknowledged; without quorum uploads get 503 and guests are still served", async () => {
  if (await requireEtcd()) return;
  const dir = await Deno.makeTempDir({ prefix: "mdserver-fleet-" });
  const cluster = await startEtcdCluster(3);
  let hosts: FleetHost[] = [];
  try {
    hosts = await startFleet(dir, cluster.endpoints, 2);
    const up = await (await adminSocketFetch(hosts[0]!.config.adminSocket, "/health")).json();
    assert.equal(up.status, "ok");
    assert.equal(up.store.reachable, true);
    assert.equal(up.store.watch.watching, true);
    const killing = new Promise((resolve) => setTimeout(resolve, 1_500)).then(() => cluster.kill(0));
    const { acknowledged } = await spreadUploads(hosts, 400, 40);
    await killing;
    // Some uploads may be refused while the cluster elects a new leader; none acknowledged may be lost.
    assert.ok(acknowledged.length >= 300, `only ${acknowledged.length} of 400 acknowledged`);
    assert.equal(new Set(acknowledged.map((guest) => guest.ipv4)).size, acknowledged.length);
    await assertServedEverywhere(hosts, acknowledged);

    // Quorum lost: one member of three left.
    await cluster.kill(1);
    const started = performance.now();
    const refusal = await uploadTo(hosts[0]!, 9_999);
    const refusedInMs = performance.now() - started;
    assert.equal(refusal.status, 503, JSON.stringify(refusal.body));
    assert.match(String(refusal.body.error ?? refusal.body.text ?? JSON.stringify(refusal.body)), /etcd/);
    assert.ok(refusedInMs < 10_000, `refused after ${refusedInMs} ms`);
    await assertServedEverywhere(hosts, acknowledged.slice(0, 50));
    // /health says why: the store cannot be reached; guests are still served.
    const health = await adminSocketFetch(hosts[1]!.config.adminSocket, "/health");
    const body = await health.json();
    assert.equal(health.status, 503);
    assert.equal(body.status, "store unavailable");
    assert.equal(body.store.backend, "etcd");
    assert.equal(body.store.reachable, false);
    assert.equal(body.store.watch.instances, acknowledged.length);
    console.log(
      `member killed: ${acknowledged.length}/400 acknowledged, all kept; quorum lost: 503 after ${
        refusedInMs.toFixed(0)
      } ms`,
    );
  } finally {
    await stopFleet(hosts);
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
