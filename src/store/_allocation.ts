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

/** The next free address after the cursor, with its (absent) index entry to check; PoolFullError when none. */
export async function findFreeAddress(
  backend: KeyValueBackend,
  pool: Ipv4Pool,
): Promise<{ address: number; entry: StoreEntry }> {
  const size = poolSize(pool);
  const [allocated, cursorEntry] = await backend.getMany([["ipam", "allocated"], ["ipam", "cursor"]]);
  if (size === 0 || (typeof allocated!.value === "number" && allocated!.value >= size)) {
    throw new PoolFullError(`the address pool is full (${size} addresses)`);
  }
  const cursor = cursorEntry!.value as number | null;
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
    if (!wrapped) {
      const entry = await getOne<string>(backend, ["by_ipv4", candidate]);
      if (entry.value === null) return { address: candidate, entry };
      checked++;
      candidate = nextPoolAddress(pool, candidate)!;
    }
  }
  throw new PoolFullError(`the address pool is full (${size} addresses)`);
}
