/**
 * IPv4 address arithmetic and the pool addresses are allocated from, and
 * the IPv6 prefix each guest's IPv6 address is derived from: pure
 * functions, no I/O, no imports. The store (store/) does the allocation in
 * KV with these.
 *
 * @module
 */

export {
  broadcastAddress,
  buildPool,
  formatCidr,
  formatIpv4,
  formatNetmask,
  type Ipv4Network,
  type Ipv4Pool,
  networkContains,
  nextPoolAddress,
  parseIpv4,
  poolContains,
  type PoolOptions,
  poolSize,
  prefixMask,
} from "./ipv4.ts";
export { formatIpv6, formatIpv6Network, ipv6ForIpv4, type Ipv6Prefix, parseIpv6, parseIpv6Prefix } from "./ipv6.ts";
