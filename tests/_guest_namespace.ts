/**
 * A host and a guest in two network namespaces joined by a veth pair, for
 * the tests that play an impostor against a real mdserver: the server end
 * holds the network's gateway and the metadata address, mdserver runs
 * there, and the guest end takes whatever MAC and address a step needs.
 *
 * @module
 */

import { adminSocketFetch, domainXml, type TestDomain } from "./_harness.ts";
import { mustRun, type NamespacePair } from "./_netns.ts";
import { type ServerProcess, spawnServer, waitForHealth } from "./_process.ts";

/** The metadata address guests ask. */
export const METADATA = "169.254.169.254";

/** The network of a pair: its base address, prefix and gateway (the server end's address). */
export interface PairNetwork {
  address: string;
  prefix: number;
  gateway: string;
}

/** Gives the server end the network's gateway and the metadata address, and brings it up. */
export async function serveMetadataFrom(pair: NamespacePair, network: PairNetwork): Promise<void> {
  const ip = (...args: string[]) => mustRun("ip", ["-n", pair.server, ...args]);
  await ip("addr", "add", `${network.gateway}/${network.prefix}`, "dev", pair.serverIf);
  await ip("addr", "add", `${METADATA}/32`, "dev", "lo");
  await ip("link", "set", "dev", pair.serverIf, "up");
}

/** Gives the guest end of the pair a MAC and an address, with a route to the metadata address. */
export async function becomeGuest(pair: NamespacePair, network: PairNetwork, mac: string, ipv4: string): Promise<void> {
  const ip = (...args: string[]) => mustRun("ip", ["-n", pair.client, ...args]);
  await ip("link", "set", "dev", pair.clientIf, "down");
  await ip("addr", "flush", "dev", pair.clientIf);
  await ip("link", "set", "dev", pair.clientIf, "address", mac);
  await ip("addr", "add", `${ipv4}/${network.prefix}`, "dev", pair.clientIf);
  await ip("link", "set", "dev", pair.clientIf, "up");
  await ip("route", "replace", `${METADATA}/32`, "via", network.gateway);
  // Both sides forget what they knew, so the next packet is resolved afresh.
  await ip("neigh", "flush", "dev", pair.clientIf);
  await mustRun("ip", ["-n", pair.server, "neigh", "flush", "dev", pair.serverIf]);
}

/**
 * GET a metadata path from the guest end, bound to its address: the status
 * (0 when nothing answered within `maxSeconds`) and the body.
 */
export async function guestGet(
  pair: NamespacePair,
  ipv4: string,
  path: string,
  maxSeconds = 10,
): Promise<{ status: number; body: string }> {
  const result = await pair.run(pair.client, "curl", [
    "-s",
    "--max-time",
    String(maxSeconds),
    "--interface",
    ipv4,
    "-w",
    "\n%{http_code}",
    `http://${METADATA}${path}`,
  ], { timeoutMs: (maxSeconds + 5) * 1000 });
  const lines = result.stdout.split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

/** Starts mdserver in the server end with this configuration file, once its admin socket answers /health. */
export async function startServerIn(pair: NamespacePair, file: string, adminSocket: string): Promise<ServerProcess> {
  // A unix socket is a file, not an address: the host reaches it whatever namespace mdserver runs in.
  const server = spawnServer(file, { netns: pair.server });
  await waitForHealth(server, adminSocket);
  return server;
}

/** Uploads these domains through the admin socket: each one's address and instance-id by name. */
export async function uploadDomains(
  adminSocket: string,
  guests: TestDomain[],
): Promise<{ ips: Record<string, string>; ids: Record<string, string> }> {
  const ips: Record<string, string> = {};
  const ids: Record<string, string> = {};
  for (const guest of guests) {
    const response = await adminSocketFetch(adminSocket, "/v1/instances", { method: "POST", body: domainXml(guest) });
    const text = await response.text();
    if (!response.ok) throw new Error(`upload of ${guest.name}: ${response.status} ${text}`);
    const answer = JSON.parse(text);
    ips[guest.name] = answer.ipv4;
    ids[guest.name] = answer.instance_id;
  }
  return { ips, ids };
}
