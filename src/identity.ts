/**
 * Who is asking: a guest is known by the source address of its request,
 * which mdserver allocated and dnsmasq pinned to its MAC.
 *
 * @module
 */

import type { Instance } from "./instance.ts";
import type { InstanceStore } from "./store.ts";

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

/** The instance a request comes from, by its source address; null for strangers. */
export async function identifyGuest(
  store: InstanceStore,
  remoteHostname: string,
): Promise<Instance | null> {
  return await store.getByIpv4(peerIpv4(remoteHostname));
}
