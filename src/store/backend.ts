/**
 * The small key-value interface every store operation runs on: read keys
 * with their versions, list a range in key order, and commit a set of
 * writes only if every checked key still has the version it was read with.
 * Deno KV (kv_backend.ts) and etcd v3 (etcd_backend.ts) implement it; the
 * store's logic (store.ts, access.ts, _undo.ts) knows nothing else.
 *
 * @module
 */

/** A key: parts compared in order; numbers sort numerically (addresses), strings by code unit. */
export type StoreKey = readonly (string | number)[];

/** A key read with its value and version; both null when the key is absent. */
export interface StoreEntry<T = unknown> {
  /** The key read. */
  key: StoreKey;
  /** The value, or null when absent. */
  value: T | null;
  /** An opaque version that changes with every write of the key, or null when absent. */
  version: string | null;
}

/** A condition of a commit: the key still has this version (null: it is still absent). */
export interface StoreCheck {
  /** The key checked. */
  key: StoreKey;
  /** The version it was read with. */
  version: string | null;
}

/** One write of a commit. */
export type StoreMutation =
  | { type: "set"; key: StoreKey; value: unknown }
  | { type: "delete"; key: StoreKey }
  /** Adds `delta` to a counter (an absent counter is 0); its value reads back as a number. */
  | { type: "sum"; key: StoreKey; delta: number };

/**
 * The outcome of a commit: ok with the version every written key now has
 * (and, when asked for, what the `readBefore` keys held just before it), or
 * a failed check.
 */
export type StoreCommitResult = { ok: true; version: string; before?: StoreEntry[] } | { ok: false };

/** Which keys a listing covers: a prefix, or the keys from `start` (inclusive) to `end` (exclusive). */
export type StoreSelector = { prefix: StoreKey } | { start: StoreKey; end: StoreKey };

/** A change seen by a watch: a key set to a value, or deleted. */
export interface StoreChange {
  /** The key changed. */
  key: StoreKey;
  /** Its new value, or null when it was deleted. */
  value: unknown;
  /** The version (revision) of the change. */
  version: string;
}

/** What `follow` reports: the whole prefix, then every change after it, or that the watch was lost. */
export interface FollowListener {
  /** Everything under the prefix at one version (again after a lost watch is re-established). */
  snapshot(entries: StoreEntry[], version: string): void;
  /** One change after the snapshot, by any process. */
  change(change: StoreChange): void;
  /** The watch broke; it is retried, and a new snapshot follows once it is back. */
  lost(error: unknown): void;
}

/** What the store's health and metrics report of its backend. */
export interface BackendStatus {
  /** "kv" or "etcd". */
  backend: string;
  /** Whether the last request to the backend succeeded. */
  reachable: boolean;
  /** When the backend was last heard from (ms since the epoch), or null. */
  lastContactMs: number | null;
  /** Backend-specific details (endpoints, revisions). */
  details: Record<string, unknown>;
}

/** The key-value interface of the instance store. */
export interface KeyValueBackend {
  /** "kv" or "etcd". */
  readonly name: string;
  /**
   * Whether another process's writes are seen by `watch` (etcd) or only by
   * reading again (Deno KV: its watch does not see other processes).
   */
  readonly watchesOthers: boolean;
  /**
   * Whether `sum` commits without conflicting with other writers' sums
   * (Deno KV's atomic sum). Where it does not (etcd: a sum is a compared
   * put), the store keeps no counters and counts keys with `count`, so
   * uploads on different hosts do not all conflict on one key.
   */
  readonly sums: boolean;
  /** How many keys lie under a prefix. */
  count(prefix: StoreKey): Promise<number>;
  /** The most checks one commit may hold (the store splits its batches to fit). */
  readonly maxOperations: number;
  /** The most writes one commit may hold. */
  readonly maxMutations: number;
  /** Reads keys with their versions, in the order asked. */
  getMany(keys: readonly StoreKey[]): Promise<StoreEntry[]>;
  /** Lists the keys a selector covers, in key order. */
  list(selector: StoreSelector, options?: { batchSize?: number }): AsyncIterable<StoreEntry>;
  /**
   * Commits the mutations if every check holds; with `readBefore`, also
   * reports what those keys held right before the commit (what it replaced).
   * Throws when the backend cannot be reached.
   */
  commit(
    checks: readonly StoreCheck[],
    mutations: readonly StoreMutation[],
    readBefore?: readonly StoreKey[],
  ): Promise<StoreCommitResult>;
  /**
   * Reports a snapshot of a prefix and then every later change to it, made
   * by any process, until `signal` aborts; resolves once the first snapshot
   * was reported. Only where `watchesOthers`; elsewhere it resolves at once
   * and reports nothing.
   */
  follow(prefix: StoreKey, listener: FollowListener, signal: AbortSignal): Promise<void>;
  /** The backend's state for /health and metrics. */
  status(): BackendStatus;
  /** Closes the backend. */
  close(): void;
}

/** Reads one key. */
export async function getOne<T>(backend: KeyValueBackend, key: StoreKey): Promise<StoreEntry<T>> {
  return (await backend.getMany([key]))[0] as StoreEntry<T>;
}
