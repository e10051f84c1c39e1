/**
 * IPv6 address arithmetic for the managed network's IPv6 side: parsing and
 * formatting (RFC 5952) addresses, the /64 prefix of `[dnsmasq]
 * ipv6_prefix`, and the address an instance gets in it, derived from its
 * IPv4 address. Pure functions.
 *
 * @module
 */

/** A /64 prefix and the host's address in it. */
export interface Ipv6Prefix {
  /** The network address as a 128-bit number (the low 64 bits are zero). */
  network: bigint;
  /** Always 64: router advertisements and dnsmasq's DHCPv6 ranges want a /64. */
  length: 64;
  /** The host's own address on the bridge: the prefix's `::1`. */
  gateway: string;
}

const MAX = (1n << 128n) - 1n;

/** Parses IPv6 text (with `::` and a trailing dotted quad allowed) to a number, or null. */
export function parseIpv6(text: string): bigint | null {
  let rest = text.trim().toLowerCase();
  if (!/^[0-9a-f:.]+$/.test(rest)) return null;
  let tail: number[] = [];
  const quad = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(rest);
  if (quad) {
    const octets = quad.slice(2).map(Number);
    if (octets.some((octet, i) => octet > 255 || (quad[i + 2]!.length > 1 && quad[i + 2]!.startsWith("0")))) {
      return null;
    }
    tail = [octets[0]! * 256 + octets[1]!, octets[2]! * 256 + octets[3]!];
    rest = quad[1]!.endsWith("::") ? quad[1]! : quad[1]!.slice(0, -1);
  }
  const halves = rest.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => part === "" ? [] : part.split(":");
  const head = groups(halves[0]!);
  const back = halves.length === 2 ? groups(halves[1]!) : [];
  const words = [...head, ...back];
  if (words.some((word) => !/^[0-9a-f]{1,4}$/.test(word))) return null;
  const count = words.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return null;
  const all = [
    ...head.map((word) => parseInt(word, 16)),
    ...Array(8 - count).fill(0),
    ...back.map((word) => parseInt(word, 16)),
    ...tail,
  ];
  return all.reduce((value, word) => (value << 16n) | BigInt(word), 0n);
}

/** Formats a 128-bit number as IPv6 text in RFC 5952's canonical form. */
export function formatIpv6(value: bigint): string {
  const words = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of two or more zero groups becomes "::" (the first one on a tie).
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) [best, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (list: number[]) => list.map((word) => word.toString(16)).join(":");
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLength))}`;
}

/**
 * Parses `<address>/64` to a prefix, or returns why it is not one: the
 * length must be 64, the host bits zero, and the prefix neither
 * link-local (fe80::/10) nor multicast (ff00::/8).
 */
export function parseIpv6Prefix(text: string): Ipv6Prefix | string {
  const [addressText, lengthText, extra] = text.trim().split("/");
  if (extra !== undefined || lengthText === undefined) return `"${text}" is not an IPv6 prefix like fd00:1:2::/64`;
  const network = parseIpv6(addressText!);
  if (network === null) return `"${addressText}" is not an IPv6 address`;
  if (lengthText !== "64") return `the prefix length must be 64 (router advertisements and DHCPv6 need a /64)`;
  if ((network & ((1n << 64n) - 1n)) !== 0n) return `"${text}" has host bits set for /64`;
  if (network >> 118n === 0x3fan || network >> 120n === 0xffn || network >> 64n === 0n) {
    return `"${text}" is not a unicast prefix (not link-local, multicast or ::)`;
  }
  return { network, length: 64, gateway: formatIpv6(network | 1n) };
}

/** The prefix as text, e.g. "fd07:5fd4:b385::". */
export function formatIpv6Network(prefix: Ipv6Prefix): string {
  return formatIpv6(prefix.network);
}

/**
 * An instance's IPv6 address: the prefix with the instance's IPv4 address
 * in the last 32 bits (10.122.0.5 → `<prefix>::a7a:5`), so that both
 * addresses of an instance are unique together and read alike.
 */
export function ipv6ForIpv4(prefix: Ipv6Prefix, ipv4: number): string {
  return formatIpv6((prefix.network | BigInt(ipv4 >>> 0)) & MAX);
}
