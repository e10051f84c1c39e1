/**
 * Finding the address a new instance gets: the next free one of the pool
 * after the shared cursor, by walking the address index in order (the first
 * gap is free), or the one an import asks for. What is read here is checked
 * again by the commit that takes the address, so two hosts reading the same
 * gap never both get it.
 *
 * @module
 */

import { getOne, type KeyValueBackend, type StoreEntry } from "./backend.ts";
import { AddressConflictError, AddressOutsidePoolError, PoolFullError } from "./errors.ts";
import { type Ipv4Pool, nextPoolAddress, parseIpv4, poolContains, poolSize } from "../ipam/ipv4.ts";

/** The address asked for by an import, if it is in the pool and free or `uuid`'s own. */
export async function claimAddress(
  backend: KeyValueBackend,
  pool: Ipv4Pool,
  text: string,
  uuid: string,
): Promise<{ address: number; entry: StoreEntry }> {
  const address = parseIpv4(text);
  if (address === null || !poolContains(pool, address)) {
    throw new AddressOutsidePoolError(`address ${text} is not in the pool`);
  }
  const entry = await getOne<string>(backend, ["by_ipv4", address]);
  if (entry.value !== null && entry.value !== uuid) {
    throw new AddressConflictError(`address ${text} already belongs to another instance`);
  }
  return { address, entry };
}

/** How many addresses are held: the counter where sums do not conflict, else a count of the address index. */
export async function heldAddresses(backend: KeyValueBackend): Promise<number> {
  if (!backend.sums) return await backend.count(["by_ipv4"]);
  const [allocated] = await backend.getMany([["ipam", "allocated"]]);
  return typeof allocated!.value === "number" ? allocated!.value : 0;
}

/**
 * The next free address after `after` (the shared cursor, or elsewhere in
 * the pool for a retry after another host took the address), with its
 * (absent) index entry to check; PoolFullError when none. Where the counter
 * is kept it answers a full pool at once; elsewhere the walk finds no gap.
 */
export async function findFreeAddress(
  backend: KeyValueBackend,
  pool: Ipv4Pool,
  after: number | null,
): Promise<{ address: number; entry: StoreEntry }> {
  const size = poolSize(pool);
  const allocated = backend.sums ? await heldAddresses(backend) : 0;
  if (size === 0 || allocated >= size) {
    throw new PoolFullError(`the address pool is full (${size} addresses)`);
  }
  const cursor = after;
  let candidate = nextPoolAddress(pool, cursor ?? pool.first - 1)!;
  let checked = 0;
  // Walk the allocated addresses in order from the candidate: the first gap
  // is free. With the cursor this is one short listing per upload.
  while (checked <= size) {
    const start = candidate;
    let wrapped = false;
    for await (
      const entry of backend.list({ start: ["by_ipv4", start], end: ["by_ipv4", pool.last + 1] }, { batchSize: 64 })
    ) {
      const taken = entry.key[1] as number;
      if (taken > candidate) break;
      if (taken === candidate) {
        const next = nextPoolAddress(pool, candidate)!;
        checked++;
        if (next < candidate) {
          wrapped = true;
          candidate = next;
          break;
        }
        candidate = next;
      }
    }
    // The listing passed the candidate without meeting it: it was free. The
    // commit checks that it still is (absent), so it is not read again.
    if (!wrapped) return { address: candidate, entry: { key: ["by_ipv4", candidate], value: null, version: null } };
  }
  throw new PoolFullError(`the address pool is full (${size} addresses)`);
}
