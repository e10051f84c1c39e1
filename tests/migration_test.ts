/**
 * Live migration between two hosts of a fleet on etcd, with hook.ts run as
 * libvirt runs it: `prepare begin` on host A, the guest boots and phones
 * home there; `migrate begin` on host B (the destination), then
 * `release end` on host A (the source's domain goes away). The guest keeps
 * its address, instance-id, boot state and host keys, is not marked
 * stopped, and host B serves it at once.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { requireEtcd, startEtcdCluster } from "./_etcd_cluster.ts";
import { fleetDomain, type FleetHost, guestGet, startFleet, stopFleet } from "./_fleet.ts";
import { adminSocketFetch, domainXml } from "./_harness.ts";
import { ROOT } from "./_process.ts";

/** Runs hook.ts for a host as libvirt does: `-P=hook`, the XML on stdin; its stderr. */
async function runHook(host: FleetHost, args: string[], xml: string): Promise<string> {
  const dir = dirname(host.config.file);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "--no-prompt",
      "-P=hook",
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
      `--allow-net=127.0.0.1,unix:${host.config.adminSocket}`,
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "hook.ts"),
      ...args,
    ],
    env: { MDSERVER_CONFIG: host.config.file, NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(xml));
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0);
  assert.equal(new TextDecoder().decode(output.stdout), "", "the hook must print nothing (libvirt reads it as XML)");
  return new TextDecoder().decode(output.stderr);
}

async function show(host: FleetHost, name: string): Promise<Record<string, unknown>> {
  const response = await adminSocketFetch(host.config.adminSocket, `/v1/instances/${name}`);
  assert.equal(response.status, 200);
  return await response.json();
}

Deno.test("live migration A → B through the hook keeps address, instance-id, boot state and host keys", async () => {
  if (await requireEtcd()) return;
  const dir = await Deno.makeTempDir({ prefix: "mdserver-migrate-" });
  const cluster = await startEtcdCluster(3);
  let hosts: FleetHost[] = [];
  try {
    hosts = await startFleet(dir, cluster.endpoints, 2);
    const [a, b] = hosts as [FleetHost, FleetHost];
    const domain = fleetDomain(7);
    const xml = domainXml(domain);

    assert.equal(await runHook(a, [domain.name, "prepare", "begin", "-"], xml), "");
    const registered = await show(a, domain.name);
    const ipv4 = String(registered.ipv4);
    const instanceId = String(registered.instance_id);
    assert.equal(registered.host, await hostnameOf(a));

    // Every host's dnsmasq holds the fleet's reservations: B has A's guest within a second.
    await waitForReservation(b, domain.mac, ipv4);

    // The guest boots on A: fetches its metadata and phones home with its host keys.
    assert.equal((await guestGet(a, ipv4, "/latest/meta-data/instance-id")).text, instanceId);
    const client = Deno.createHttpClient({ localAddress: ipv4 });
    try {
      const response = await fetch(`${a.config.metadataUrl}/phone-home`, {
        method: "POST",
        client,
        body: new URLSearchParams({
          instance_id: instanceId,
          hostname: domain.name,
          pub_key_ed25519: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMigrationTestKey root@guest",
        }),
      });
      await response.body?.cancel();
      assert.ok(response.ok);
    } finally {
      client.close();
    }
    assert.equal((await show(a, domain.name)).boot_state, "booted");

    // libvirt: the destination's `migrate begin`, then the source's `release end`.
    assert.equal(await runHook(b, [domain.name, "migrate", "begin", "-"], xml), "");
    assert.equal(await runHook(a, [domain.name, "release", "end", "-"], xml), "");

    for (const host of [b, a]) {
      const after = await show(host, domain.name);
      assert.equal(after.ipv4, ipv4);
      assert.equal(after.instance_id, instanceId);
      assert.equal(after.state, "registered", `${host.name}: a migrated guest is not stopped`);
      assert.equal(after.boot_state, "booted", `${host.name}: its boot is not new`);
      assert.deepEqual((after.access as { host_keys: Record<string, string> }).host_keys, {
        "ssh-ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMigrationTestKey",
      });
      assert.equal(after.host, await hostnameOf(b));
    }
    // The destination serves it at once.
    assert.equal((await guestGet(b, ipv4, "/latest/meta-data/instance-id")).text, instanceId);

    // A real stop on B (its `release end`) still marks it stopped, keeping the address.
    assert.equal(await runHook(b, [domain.name, "release", "end", "-"], xml), "");
    const stopped = await show(a, domain.name);
    assert.equal(stopped.state, "stopped");
    assert.equal(stopped.ipv4, ipv4);
  } finally {
    await stopFleet(hosts);
    await cluster.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Waits (at most 1 s) until a host's dnsmasq record files give `mac` the address `ipv4`. */
async function waitForReservation(host: FleetHost, mac: string, ipv4: string): Promise<void> {
  const dir = join(host.config.dnsmasqDir, "dhcp-hosts");
  const deadline = performance.now() + 1_000;
  while (performance.now() < deadline) {
    for await (const entry of Deno.readDir(dir)) {
      const text = await Deno.readTextFile(join(dir, entry.name)).catch(() => "");
      if (text.includes(mac) && text.includes(ipv4)) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${host.name}'s dnsmasq has no reservation ${mac} → ${ipv4} after 1 s`);
}

/** The `[service] hostname` a fleet host's configuration sets. */
async function hostnameOf(host: FleetHost): Promise<string> {
  const text = await Deno.readTextFile(host.config.file);
  return /^hostname = (.+)$/m.exec(text)![1]!;
}
