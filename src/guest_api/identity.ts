/**
 * Who is asking: a guest is known by the source address of its request,
 * which mdserver allocated and dnsmasq pinned to its MAC.
 *
 * With `verify_mac = yes` the address alone is not trusted: the MAC the
 * kernel's neighbour table holds for it must be the instance's MAC, so a
 * guest that takes another guest's address from its own MAC is refused.
 *
 * @module
 */

import { MacMismatchError } from "./errors.ts";
import type { Instance } from "../store/instance.ts";
import type { Logger } from "../log/log.ts";
import { ipNeighLookup, type NeighbourLookup } from "./neighbours.ts";
import type { InstanceStore } from "../store/store.ts";

/** The IPv4 text of a peer address, unwrapping IPv4-mapped IPv6 ("::ffff:10.0.0.5"). */
export function peerIpv4(hostname: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(hostname);
  return mapped ? mapped[1]! : hostname;
}

/** Whether an address is the local host's loopback (127.0.0.1 or ::1). */
export function isLoopback(hostname: string): boolean {
  const address = peerIpv4(hostname);
  return address === "127.0.0.1" || address === "::1";
}

/** How identifyGuest checks a guest beyond its address. */
export interface IdentityOptions {
  /**
   * Compare the neighbour table's MAC for the address with the record
   * (`verify_mac`): true always (an unreadable table refuses), "auto" where
   * the table can be read and for addresses reached over a link (not
   * 127.0.0.0/8, which has no MAC), false never.
   */
  verifyMac?: boolean | "auto";
  /** With "auto": called when the table cannot be read (the request is then served unchecked). */
  onUnreadable?: (error: Error) => void;
  /** The neighbour table; default: the kernel's, through `ip neigh`, in this network namespace. */
  neighbours?: NeighbourLookup;
  /** Where a refusal is logged. */
  log?: Logger;
}

/**
 * The instance a request comes from, by its source address; null for
 * strangers. With `verifyMac`, throws MacMismatchError when the neighbour table
 * has no entry for the address or one with another MAC.
 */
export async function identifyGuest(
  store: InstanceStore,
  remoteHostname: string,
  options: IdentityOptions = {},
): Promise<Instance | null> {
  const source = peerIpv4(remoteHostname);
  const instance = await store.getByIpv4(source);
  if (instance === null || !options.verifyMac) return instance;
  const neighbours = options.neighbours ?? ipNeighLookup();
  if (options.verifyMac === "auto") {
    if (source.startsWith("127.")) return instance; // this host's own address: no link, no MAC
    try {
      await neighbours(source);
    } catch (error) {
      options.onUnreadable?.(error as Error);
      return instance;
    }
  }
  const reason = await macMismatch(instance, source, neighbours);
  if (reason !== null) {
    options.log?.warning(`verify_mac: refused ${source}: ${reason}`);
    throw new MacMismatchError(source, reason);
  }
  return instance;
}

/** Why the neighbour table does not vouch for this instance at this address, or null when it does. */
export async function macMismatch(
  instance: Pick<Instance, "name" | "mac">,
  source: string,
  neighbours: NeighbourLookup,
): Promise<string | null> {
  let entries;
  try {
    entries = await neighbours(source);
  } catch (error) {
    return `cannot read the neighbour table: ${(error as Error).message}`;
  }
  if (entries.length === 0) {
    return `no neighbour table entry for ${source}, so its MAC cannot be checked (verify_mac = yes)`;
  }
  const expected = instance.mac.toLowerCase();
  const other = entries.find((entry) => entry.mac !== expected);
  if (other !== undefined) {
    return `MAC ${other.mac} (on ${other.device}) is not ${expected}, the MAC of instance "${instance.name}"`;
  }
  return null;
}
