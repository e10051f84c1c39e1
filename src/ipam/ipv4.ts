/**
 * IPv4 address arithmetic and the pool an instance's address comes from.
 * Pure functions: the store (src/store.ts) makes allocation atomic.
 *
 * @module
 */

/** An IPv4 network: the address as an unsigned 32-bit number and a prefix length. */
export interface Ipv4Network {
  /** Network address, as a number. */
  address: number;
  /** Prefix length, 0–32. */
  prefix: number;
}

/** The addresses instances may receive, first to last inclusive, as numbers. */
export interface Ipv4Pool {
  /** First address handed out, as a number. */
  first: number;
  /** Last address handed out, as a number. */
  last: number;
  /** Addresses inside [first, last] that are never handed out (gateway, listen address). */
  reserved: Set<number>;
}

/** Parses dotted-quad text to a number, or null when it is not an IPv4 address. */
export function parseIpv4(text: string): number | null {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!match) return null;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const part = match[i]!;
    if (part.length > 1 && part.startsWith("0")) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

/** Formats a number as dotted-quad text. */
export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

/** The netmask of a prefix length, as a number. */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The netmask of a prefix length, as dotted-quad text. */
export function formatNetmask(prefix: number): string {
  return formatIpv4(prefixMask(prefix));
}

/** The broadcast address of a network. */
export function broadcastAddress(network: Ipv4Network): number {
  return (network.address | (~prefixMask(network.prefix) >>> 0)) >>> 0;
}

/** Whether an address lies inside a network. */
export function networkContains(network: Ipv4Network, address: number): boolean {
  const mask = prefixMask(network.prefix);
  return ((address & mask) >>> 0) === ((network.address & mask) >>> 0);
}

/** Formats a network as CIDR text, e.g. "10.122.0.0/16". */
export function formatCidr(network: Ipv4Network): string {
  return `${formatIpv4(network.address)}/${network.prefix}`;
}

/** What a pool is built from; addresses as dotted-quad text. */
export interface PoolOptions {
  /** The managed network. */
  network: Ipv4Network;
  /** The gateway, never handed out. */
  gateway: string;
  /** The metadata address, never handed out. */
  listenAddress: string;
  /** First address of the pool; default the first after the network address. */
  poolStart?: string | null;
  /** Last address of the pool; default the last before the broadcast address. */
  poolEnd?: string | null;
}

/**
 * The pool of a network: every host address (never the network or broadcast
 * address), narrowed to [poolStart, poolEnd] when given, without the gateway
 * and the listen address.
 */
export function buildPool(options: PoolOptions): Ipv4Pool {
  const { network } = options;
  const hostFirst = network.prefix >= 31 ? network.address : network.address + 1;
  const hostLast = network.prefix >= 31 ? broadcastAddress(network) : broadcastAddress(network) - 1;
  const start = options.poolStart ? parseIpv4(options.poolStart) : null;
  const end = options.poolEnd ? parseIpv4(options.poolEnd) : null;
  const first = Math.max(hostFirst, start ?? hostFirst);
  const last = Math.min(hostLast, end ?? hostLast);
  const reserved = new Set<number>();
  for (const text of [options.gateway, options.listenAddress]) {
    const address = parseIpv4(text);
    if (address !== null && address >= first && address <= last) reserved.add(address);
  }
  return { first, last, reserved };
}

/** How many addresses a pool can hand out. */
export function poolSize(pool: Ipv4Pool): number {
  return Math.max(0, pool.last - pool.first + 1 - pool.reserved.size);
}

/** Whether an address may be handed out from the pool. */
export function poolContains(pool: Ipv4Pool, address: number): boolean {
  return address >= pool.first && address <= pool.last && !pool.reserved.has(address);
}

/**
 * The address the pool hands out after `address`, skipping reserved ones and
 * wrapping from the last to the first. Null when the pool is empty.
 */
export function nextPoolAddress(pool: Ipv4Pool, address: number): number | null {
  if (poolSize(pool) === 0) return null;
  let candidate = address;
  do {
    candidate = candidate >= pool.last || candidate < pool.first ? pool.first : candidate + 1;
  } while (pool.reserved.has(candidate));
  return candidate;
}
