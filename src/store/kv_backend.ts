/**
 * The Deno KV backend: one database file on one host (or `:memory:` in
 * tests). Versions are KV's versionstamps, checks its `.check()`, counters
 * its `sum` on Deno.KvU64. Its watch sees only this process's writes, and
 * those the store already tells its listeners itself, so `watch` here
 * watches nothing: another process sharing the file is seen by reading again.
 *
 * @module
 */

import type {
  BackendStatus,
  FollowListener,
  KeyValueBackend,
  StoreCheck,
  StoreCommitResult,
  StoreEntry,
  StoreKey,
  StoreMutation,
  StoreSelector,
} from "./backend.ts";

/** Deno KV reads at most this many keys in one getMany. */
const GET_MANY_LIMIT = 10;
/** Deno KV takes at most 100 checks in one atomic operation. */
const MAX_CHECKS = 100;
const U64 = 1n << 64n;

/** The store's key-value interface over one Deno KV database. */
export class DenoKvBackend implements KeyValueBackend {
  /** "kv". */
  readonly name = "kv";
  /** Deno KV's watch does not see other processes. */
  readonly watchesOthers = false;
  /** Deno KV's sums never conflict. */
  readonly sums = true;
  /** Deno KV's limit of checks per atomic operation. */
  readonly maxOperations: number = MAX_CHECKS;
  /** Deno KV's limit of mutations per atomic operation. */
  readonly maxMutations: number = 1000;
  /** The database. */
  readonly kv: Deno.Kv;
  #lastContactMs: number | null = null;
  #reachable = true;

  /** A backend over an open database. */
  constructor(kv: Deno.Kv) {
    this.kv = kv;
  }

  /** Reads keys in chunks of KV's getMany limit. */
  async getMany(keys: readonly StoreKey[]): Promise<StoreEntry[]> {
    const entries: StoreEntry[] = [];
    for (let start = 0; start < keys.length; start += GET_MANY_LIMIT) {
      const chunk = keys.slice(start, start + GET_MANY_LIMIT) as Deno.KvKey[];
      const read = chunk.length === 1 ? [await this.kv.get(chunk[0]!)] : await this.kv.getMany(chunk);
      for (const entry of read) entries.push(fromKv(entry));
    }
    return entries;
  }

  /** Lists with KV's own iterator. */
  async *list(selector: StoreSelector, options: { batchSize?: number } = {}): AsyncIterable<StoreEntry> {
    const kvSelector = "prefix" in selector
      ? { prefix: selector.prefix as Deno.KvKey }
      : { start: selector.start as Deno.KvKey, end: selector.end as Deno.KvKey };
    const iterator = this.kv.list(kvSelector, options.batchSize ? { batchSize: options.batchSize } : {});
    for await (const entry of iterator) yield fromKv(entry);
  }

  /** Counts by listing (the store counts with its counter on Deno KV). */
  async count(prefix: StoreKey): Promise<number> {
    let count = 0;
    for await (const _ of this.kv.list({ prefix: prefix as Deno.KvKey })) count++;
    return count;
  }

  /**
   * One atomic operation with a check per key; `readBefore` keys are read
   * first and checked too, so they are exactly what the commit replaces. A
   * thrown error (disk full, lock held) is passed on.
   */
  async commit(
    checks: readonly StoreCheck[],
    mutations: readonly StoreMutation[],
    readBefore?: readonly StoreKey[],
  ): Promise<StoreCommitResult> {
    const before = readBefore ? await this.getMany(readBefore) : undefined;
    const op = this.kv.atomic();
    for (const check of [...checks, ...before ?? []]) {
      op.check({ key: check.key as Deno.KvKey, versionstamp: check.version });
    }
    for (const mutation of mutations) {
      const key = mutation.key as Deno.KvKey;
      if (mutation.type === "set") op.set(key, mutation.value);
      else if (mutation.type === "delete") op.delete(key);
      else op.sum(key, (BigInt(mutation.delta) + U64) % U64); // sum() wraps: 2^64-1 subtracts 1
    }
    try {
      const result = await op.commit();
      this.#contact(true);
      if (!result.ok) return { ok: false };
      return before ? { ok: true, version: result.versionstamp, before } : { ok: true, version: result.versionstamp };
    } catch (error) {
      this.#contact(false);
      throw error;
    }
  }

  /** Nothing to follow: other processes are not seen, this one's changes reach listeners directly. */
  follow(_prefix: StoreKey, _listener: FollowListener, _signal: AbortSignal): Promise<void> {
    return Promise.resolve();
  }

  /** The database file is local: reachable unless the last commit failed. */
  status(): BackendStatus {
    return { backend: "kv", reachable: this.#reachable, lastContactMs: this.#lastContactMs, details: {} };
  }

  /** Closes the database. */
  close(): void {
    this.kv.close();
  }

  #contact(ok: boolean): void {
    this.#reachable = ok;
    if (ok) this.#lastContactMs = Date.now();
  }
}

/** A KV entry as the store's entry: counters (Deno.KvU64) read as numbers. */
function fromKv(entry: Deno.KvEntryMaybe<unknown>): StoreEntry {
  const value = entry.value instanceof Deno.KvU64 ? Number(entry.value.value) : entry.value;
  return { key: entry.key as StoreKey, value, version: entry.versionstamp };
}

/** The backend for a KV database, or the backend itself when given one. */
export function asBackend(store: Deno.Kv | KeyValueBackend): KeyValueBackend {
  return isKv(store) ? new DenoKvBackend(store) : store;
}

/** Whether `store` is a Deno KV database (Deno.Kv is absent without the kv feature). */
export function isKv(store: Deno.Kv | KeyValueBackend): store is Deno.Kv {
  return typeof Deno.Kv === "function" && store instanceof Deno.Kv;
}
