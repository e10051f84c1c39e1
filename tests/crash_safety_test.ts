/**
 * Crash safety: 500 concurrent uploads to mdserver running as its own
 * process, SIGKILL part-way, restart on the same KV file and dnsmasq folder.
 * Every upload answered 2xx is there with the address it was given, no
 * address is held twice, KV's indexes agree with the records, and dnsmasq's
 * host records match KV exactly.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { dnsmasqPaths, recordFileName, renderDhcpHost, renderHostsEntry } from "../src/dnsmasq/mod.ts";
import type { Instance } from "../src/store/instance.ts";
import { parseIpv4 } from "../src/ipam/ipv4.ts";
import { adminSocketFetch, domainXml } from "./_harness.ts";
import { spawnServer, waitForHealth, writeProcessConfig } from "./_process.ts";

const UPLOADS = 500;
const KILL_AFTER = 150;
const NETWORK = { address: "127.91.0.0", prefix: 16, gateway: "127.91.0.1" };

function domain(n: number) {
  const hex = n.toString(16).padStart(4, "0");
  return {
    name: `crash-${n}`,
    uuid: `c7a5c7a5-${hex}-4000-8000-00000000${hex}`,
    mac: `52:54:00:c7:${hex.slice(0, 2)}:${hex.slice(2)}`,
  };
}

/** Every file in a folder, name → content. */
async function files(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) out.set(entry.name, await Deno.readTextFile(join(dir, entry.name)));
  return out;
}

Deno.test("SIGKILL during 500 concurrent uploads loses no acknowledged upload and leaves KV and dnsmasq in step", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-crash-" });
  const servers: ReturnType<typeof spawnServer>[] = [];
  try {
    const cfg = await writeProcessConfig(dir, "crash", { network: NETWORK });
    const first = spawnServer(cfg.file);
    servers.push(first);
    await waitForHealth(first, cfg.adminSocket);

    // Half through the admin API (the hook's way), half through md_server's /instance-upload.
    const acknowledged = new Map<string, { ipv4: string; name: string }>();
    let killed = false;
    const results = await Promise.allSettled(
      Array.from({ length: UPLOADS }, async (_, n) => {
        const init = { method: "POST", body: domainXml(domain(n)) };
        const response = n % 2 === 0
          ? await adminSocketFetch(cfg.adminSocket, "/v1/instances", init)
          : await fetch(`${cfg.metadataUrl}/instance-upload`, init);
        const text = await response.text();
        if (response.status < 200 || response.status > 299) throw new Error(`${response.status} ${text}`);
        const json = JSON.parse(text);
        acknowledged.set(json.uuid, { ipv4: json.ipv4, name: json.name });
        if (acknowledged.size >= KILL_AFTER && !killed) {
          killed = true;
          first.kill("SIGKILL");
        }
      }),
    );
    const status = await first.exited;
    assert.equal(status.signal, "SIGKILL", first.log());
    const failed = results.filter((result) => result.status === "rejected");
    // Part-way: some were answered, some were cut off. None was refused for a reason of its own.
    assert.ok(acknowledged.size >= KILL_AFTER && failed.length > 0, `${acknowledged.size} answered`);
    for (const result of failed) {
      assert.doesNotMatch(String((result as PromiseRejectedResult).reason), /^Error: [45]\d\d /);
    }

    const second = spawnServer(cfg.file);
    servers.push(second);
    await waitForHealth(second, cfg.adminSocket);
    const listed: Instance[] = await (await adminSocketFetch(cfg.adminSocket, `/v1/instances`)).json();
    const byUuid = new Map(listed.map((instance) => [instance.uuid, instance]));
    for (const [uuid, answered] of acknowledged) {
      const instance = byUuid.get(uuid);
      assert.ok(instance, `acknowledged upload ${answered.name} (${uuid}) is gone`);
      assert.equal(instance.ipv4, answered.ipv4, `${answered.name} moved`);
    }
    console.log(
      `${acknowledged.size} of ${UPLOADS} uploads answered before SIGKILL; ${listed.length} stored after the restart`,
    );
    const addresses = listed.map((instance) => instance.ipv4);
    assert.equal(new Set(addresses).size, addresses.length, "an address is held twice");
    assert.ok(listed.length <= UPLOADS);
    const stopped = await second.stop();
    assert.equal(stopped.code, 0, second.log());

    // KV: one record per instance, and every index points at it and nothing else.
    const config = await loadConfig(cfg.file);
    const kv = await Deno.openKv(cfg.kvFile);
    try {
      const instances: Instance[] = [];
      for await (const entry of kv.list<Instance>({ prefix: ["instances"] })) instances.push(entry.value);
      assert.deepEqual(instances.map((instance) => instance.uuid).sort(), [...byUuid.keys()].sort());
      for (const [index, field] of [["by_ipv4", "ipv4"], ["by_name", "name"], ["by_mac", "mac"]] as const) {
        const entries = new Map<unknown, string>();
        for await (const entry of kv.list<string>({ prefix: [index] })) entries.set(entry.key[1], entry.value);
        assert.equal(entries.size, instances.length, `${index} has ${entries.size} entries`);
        for (const instance of instances) {
          const key = field === "ipv4" ? parseIpv4(instance.ipv4) : instance[field];
          assert.equal(entries.get(key), instance.uuid, `${index} of ${instance.name}`);
        }
      }
      const allocated = (await kv.get<Deno.KvU64>(["ipam", "allocated"])).value;
      assert.equal(Number(allocated?.value ?? 0n), instances.length, "the allocation count drifted");

      // dnsmasq: exactly one DHCP and one hosts record per instance, as rendered from KV.
      const paths = dnsmasqPaths(config);
      const expectedDhcp = new Map(instances.map((i) => [recordFileName(i), renderDhcpHost(config, i)]));
      const expectedHosts = new Map(instances.map((i) => [recordFileName(i), renderHostsEntry(config, i)]));
      assert.deepEqual(await files(paths.dhcpHostsDir), expectedDhcp);
      assert.deepEqual(await files(paths.hostsDir), expectedHosts);
    } finally {
      kv.close();
    }
  } finally {
    for (const server of servers) {
      server.kill("SIGKILL");
      await server.exited;
    }
    await Deno.remove(dir, { recursive: true });
  }
});
