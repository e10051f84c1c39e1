/**
 * A fleet for tests: N mdserver processes (standing for hosts) on one etcd
 * cluster, each with its own metadata port, admin socket and dnsmasq files,
 * all sharing one key prefix; guests are loopback addresses of 127.88.0.0/16,
 * so a request from a guest is `fetch` with that local address.
 *
 * @module
 */

import { join } from "node:path";
import { domainXml } from "./_harness.ts";
import { type ProcessConfig, type ServerProcess, spawnServer, waitForHealth, writeProcessConfig } from "./_process.ts";

/** The guests' network. */
export const FLEET_NETWORK = { address: "127.88.0.0", prefix: 16, gateway: "127.88.0.1" };

/** One host of the fleet. */
export interface FleetHost {
  name: string;
  config: ProcessConfig;
  server: ServerProcess;
}

/** Starts `count` hosts on the cluster at `endpoints` and waits until each is healthy. */
export async function startFleet(dir: string, endpoints: string[], count: number): Promise<FleetHost[]> {
  const prefix = `/fleet-${crypto.randomUUID().slice(0, 8)}/`;
  const hosts: FleetHost[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const name = `host${index}`;
      const hostDir = join(dir, name);
      await Deno.mkdir(hostDir, { recursive: true });
      const config = await writeProcessConfig(hostDir, name, { network: FLEET_NETWORK });
      await Deno.writeTextFile(
        config.file,
        `\n[store]\nbackend = etcd\nendpoints = ${endpoints.join(",")}\nprefix = ${prefix}\ntimeout = 1000\n`,
        { append: true },
      );
      // Each host has its own name, as hypervisors do: a record says which host it runs on.
      const text = await Deno.readTextFile(config.file);
      await Deno.writeTextFile(
        config.file,
        text.replace("location = testzone", `location = testzone\nhostname = ${name}.fleet.test`),
      );
      hosts.push({ name, config, server: spawnServer(config.file) });
    }
    await Promise.all(hosts.map((host) => waitForHealth(host.server, host.config.adminSocket)));
    return hosts;
  } catch (error) {
    await stopFleet(hosts);
    throw error;
  }
}

/** Stops every host. */
export async function stopFleet(hosts: FleetHost[]): Promise<void> {
  await Promise.all(hosts.map((host) => host.server.stop()));
}

/** The n-th test domain. */
export function fleetDomain(n: number) {
  const hex = n.toString(16).padStart(6, "0");
  return {
    name: `guest${n}`,
    uuid: `0000${hex.slice(0, 4)}-0000-4000-8000-00000${hex}0`.slice(0, 36),
    mac: `52:54:01:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`,
  };
}

/** Uploads a domain to a host as md_server's /instance-upload: the status and the JSON answer. */
export async function uploadTo(
  host: FleetHost,
  n: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${host.config.metadataUrl}/instance-upload`, {
    method: "POST",
    body: domainXml(fleetDomain(n)),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    body = { text };
  }
  return { status: response.status, body };
}

/** What a host answers a guest at `address` for `path` (EC2 meta-data): status and text, on a connection of its own. */
export async function guestGet(
  host: FleetHost,
  address: string,
  path: string,
): Promise<{ status: number; text: string }> {
  const client = Deno.createHttpClient({ localAddress: address });
  try {
    const response = await fetch(`${host.config.metadataUrl}${path}`, { client, signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text() };
  } finally {
    client.close();
  }
}

/** Runs `tasks` with at most `limit` in flight. */
export async function inParallel<T>(count: number, limit: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  }));
  return results;
}
