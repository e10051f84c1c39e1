/**
 * Operating a fleet on etcd: `check-config` says which endpoints answer,
 * and `migrate-store` moves a host's KV file into etcd keeping every
 * address, instance-id, state and host key (and changes nothing when run
 * again).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runMain } from "../src/cli/main.ts";
import { captureCli } from "./_cli_capture.ts";
import { loadConfig } from "../src/config/mod.ts";
import { createStore } from "../src/service/mod.ts";
import { AccessRecorder, DenoKvBackend, EtcdBackend } from "../src/store/mod.ts";
import { silentLogger } from "../src/log/log.ts";
import { requireEtcd, startEtcdCluster } from "./_etcd_cluster.ts";
import { freePort } from "./_netns.ts";

async function writeConfig(dir: string, endpoints: string[], prefix: string): Promise<string> {
  await Deno.mkdir(join(dir, "userdata"), { recursive: true });
  const file = join(dir, "mdserver.conf");
  await Deno.writeTextFile(
    file,
    `[mdserver]\nlisten_address = 127.0.0.1\nport = 0\nuserdata_dir = userdata\nkv_file = host.kv\n` +
      `[dnsmasq]\nnet_address = 127.89.0.0\nnet_prefix = 16\ngateway = 127.89.0.1\n` +
      `[store]\nbackend = etcd\nendpoints = ${endpoints.join(",")}\nprefix = ${prefix}\ntimeout = 500\n`,
  );
  return file;
}

Deno.test("check-config says which etcd endpoints answer, and fails when none has quorum", async () => {
  if (await requireEtcd()) return;
  const dir = await Deno.makeTempDir({ prefix: "mdserver-fleet-ops-" });
  const cluster = await startEtcdCluster(3);
  try {
    const dead = `http://127.0.0.1:${freePort()}`;
    const file = await writeConfig(dir, [...cluster.endpoints, dead], "/ops/");
    let run = captureCli();
    assert.equal(await runMain(["check-config", file], run.deps), 0);
    const lines = run.out.filter((line) => line.startsWith("etcd"));
    for (const endpoint of cluster.endpoints) {
      assert.ok(lines.some((line) => line.startsWith(`etcd ${endpoint}: reachable (etcd 3.`)), lines.join("\n"));
    }
    assert.ok(lines.some((line) => line.startsWith(`etcd ${dead}: unreachable: `)), lines.join("\n"));
    assert.ok(lines.includes("etcd: 3 of 4 endpoints reachable with quorum"), lines.join("\n"));

    // Two members of three gone: the last one answers its status, but no read goes through.
    await cluster.kill(0);
    await cluster.kill(1);
    run = captureCli();
    assert.equal(await runMain(["check-config", file], run.deps), 1);
    assert.ok(run.out.includes("etcd: 0 of 4 endpoints reachable with quorum"), run.out.join("\n"));
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("migrate-store moves a host's KV file into etcd keeping addresses, instance-ids, states and host keys", async () => {
  if (await requireEtcd()) return;
  const dir = await Deno.makeTempDir({ prefix: "mdserver-fleet-ops-" });
  const cluster = await startEtcdCluster(3);
  try {
    const file = await writeConfig(dir, cluster.endpoints, "/migrate/");
    const config = await loadConfig(file);
    // The host's own store, as a single-host mdserver left it.
    const kv = await Deno.openKv(join(dir, "host.kv"));
    const before = [];
    try {
      const local = createStore(new DenoKvBackend(kv), config);
      for (let n = 1; n <= 5; n++) {
        const hex = n.toString(16).padStart(2, "0");
        const { instance } = await local.upsert({
          uuid: `00000000-0000-4000-8000-0000000000${hex}`,
          name: `vm${n}`,
          mac: `52:54:00:00:00:${hex}`,
          vcpus: 1,
          memoryMiB: 512,
          metadata: {},
          tags: {},
        }, n === 3 ? { instanceId: "i-0a000003", ipv4: "127.89.0.200" } : {});
        before.push(instance);
      }
      await local.setState(before[1]!.uuid, "stopped");
      const access = new AccessRecorder(kv, { log: silentLogger });
      await access.recordBoot(before[0]!.uuid, "vm1", { "ssh-ed25519": "ssh-ed25519 AAAAHostKey" });
    } finally {
      kv.close();
    }

    let run = captureCli();
    assert.equal(await runMain(["migrate-store", "--config", file], run.deps), 0, run.err.join("\n"));
    assert.equal(run.out.filter((line) => line.startsWith("moved\t")).length, 5, run.out.join("\n"));
    assert.equal(run.out.at(-1), `5 of 5 instances in etcd from ${join(dir, "host.kv")}`);

    const etcd = new EtcdBackend({ endpoints: cluster.endpoints, prefix: "/migrate/", timeoutMs: 1_000 });
    try {
      const fleet = createStore(etcd, config);
      for (const instance of before) {
        const moved = await fleet.getByUuid(instance.uuid);
        assert.equal(moved?.ipv4, instance.ipv4);
        assert.equal(moved?.instanceId, instance.instanceId);
        assert.equal((await fleet.find(instance.instanceId))?.uuid, instance.uuid);
      }
      assert.equal((await fleet.getByUuid(before[1]!.uuid))?.state, "stopped");
      assert.equal(await fleet.allocatedCount(), 5);
      const access = new AccessRecorder(etcd, { log: silentLogger });
      assert.deepEqual((await access.get(before[0]!.uuid))?.hostKeys, { "ssh-ed25519": "ssh-ed25519 AAAAHostKey" });
    } finally {
      etcd.close();
    }

    // Again: everything is there already.
    run = captureCli();
    assert.equal(await runMain(["migrate-store", "--config", file], run.deps), 0);
    assert.equal(run.out.filter((line) => line.startsWith("kept\t")).length, 5, run.out.join("\n"));
  } finally {
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
