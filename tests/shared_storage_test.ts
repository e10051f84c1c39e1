/**
 * Shared storage: two mdserver processes on one KV file, as two hypervisors
 * sharing a store (md_server allowed this). Concurrent uploads split across
 * both never get the same address, and each process lists and serves the
 * instances the other registered.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Instance } from "../src/store/instance.ts";
import { parseIpv4 } from "../src/ipam/ipv4.ts";
import { adminSocketFetch, domainXml } from "./_harness.ts";
import { type ServerProcess, spawnServer, waitForHealth, writeProcessConfig } from "./_process.ts";

const UPLOADS = 100;
const NETWORK = { address: "127.93.0.0", prefix: 16, gateway: "127.93.0.1" };

function domain(n: number) {
  const hex = n.toString(16).padStart(4, "0");
  return {
    name: `shared-${n}`,
    uuid: `5ba2ed00-${hex}-4000-8000-00000000${hex}`,
    mac: `52:54:00:5b:${hex.slice(0, 2)}:${hex.slice(2)}`,
  };
}

Deno.test("two mdserver processes on one KV file never share an address and see each other's instances", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-shared-" });
  const servers: ServerProcess[] = [];
  try {
    const kvFile = join(dir, "shared.kv");
    const hosts = [
      await writeProcessConfig(dir, "host-a", { network: NETWORK, kvFile, dnsmasqDir: join(dir, "dnsmasq-a") }),
      await writeProcessConfig(dir, "host-b", { network: NETWORK, kvFile, dnsmasqDir: join(dir, "dnsmasq-b") }),
    ];
    for (const host of hosts) servers.push(spawnServer(host.file));
    await Promise.all(hosts.map((host, i) => waitForHealth(servers[i]!, host.adminSocket)));

    // All at once, alternating hosts and both upload endpoints.
    const answers = await Promise.all(Array.from({ length: UPLOADS }, async (_, n) => {
      const host = hosts[n % 2]!;
      const init = { method: "POST", body: domainXml(domain(n)) };
      const response = n % 4 < 2
        ? await adminSocketFetch(host.adminSocket, "/v1/instances", init)
        : await fetch(`${host.metadataUrl}/instance-upload`, init);
      const json = await response.json();
      assert.equal(response.status, 201, `upload ${n} to ${n % 2 ? "B" : "A"}: ${JSON.stringify(json)}`);
      return json as { uuid: string; ipv4: string; instance_id: string };
    }));
    const addresses = answers.map((answer) => answer.ipv4);
    assert.equal(new Set(addresses).size, UPLOADS, "two uploads got the same address");

    const expected = answers.map((answer) => `${answer.uuid} ${answer.ipv4}`).sort();
    for (const [i, host] of hosts.entries()) {
      const listed: Instance[] = await (await adminSocketFetch(host.adminSocket, `/v1/instances`)).json();
      assert.deepEqual(listed.map((instance) => `${instance.uuid} ${instance.ipv4}`).sort(), expected, `host ${i}`);
      const health = await (await adminSocketFetch(host.adminSocket, `/health`)).json();
      assert.equal(health.instances, UPLOADS, `host ${i} counts ${health.instances} addresses`);
    }

    // A guest registered through one host is served by the other.
    for (const n of [0, 1, 2, 3]) {
      const answer = answers[n]!;
      const other = hosts[(n + 1) % 2]!;
      const client = Deno.createHttpClient({ localAddress: answer.ipv4 });
      try {
        const response = await fetch(`${other.metadataUrl}/latest/meta-data/instance-id`, { client });
        assert.equal(response.status, 200);
        assert.equal(await response.text(), answer.instance_id);
      } finally {
        client.close();
      }
    }

    // A re-upload through the other host keeps the address.
    const again = await adminSocketFetch(hosts[1]!.adminSocket, `/v1/instances`, {
      method: "POST",
      body: domainXml(domain(0)),
    });
    assert.equal(again.status, 200);
    assert.equal((await again.json()).ipv4, answers[0]!.ipv4);

    for (const server of servers) assert.equal((await server.stop()).code, 0, server.log());
    const kv = await Deno.openKv(kvFile);
    try {
      const byIpv4 = new Map<unknown, string>();
      for await (const entry of kv.list<string>({ prefix: ["by_ipv4"] })) byIpv4.set(entry.key[1], entry.value);
      assert.equal(byIpv4.size, UPLOADS);
      for (const answer of answers) assert.equal(byIpv4.get(parseIpv4(answer.ipv4)), answer.uuid);
      const allocated = (await kv.get<Deno.KvU64>(["ipam", "allocated"])).value;
      assert.equal(Number(allocated?.value ?? 0n), UPLOADS);
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
