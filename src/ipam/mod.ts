/**
 * IPv4 address arithmetic and the pool addresses are allocated from: pure
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
