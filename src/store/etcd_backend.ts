/**
 * The etcd v3 backend, through etcd's JSON gateway (_etcd_client.ts): a
 * fleet of hosts shares one registry and one address pool. A commit is one
 * etcd transaction: compare every checked key's mod_revision (0 for a key
 * that must be absent), then put and delete; a version is the revision of
 * the transaction that wrote the key. Counters are JSON numbers: a `sum` reads
 * the counter, compares its revision and puts the new value, so two hosts'
 * sums never lose one. Reads are linearizable (etcd's default): without
 * quorum they fail, and the store serves guests from its watch-fed copy.
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
import { EtcdClient, type EtcdHeader, type EtcdKv } from "./_etcd_client.ts";
import { decodeKey, encodeKey, fromBase64, prefixRange, toBase64 } from "./_etcd_keys.ts";
import { followPrefix } from "./_etcd_watch.ts";

/** How the etcd backend reaches its cluster. */
export interface EtcdBackendOptions {
  /** Client URLs of the members. */
  endpoints: readonly string[];
  /** Every key lives under this prefix (several fleets or tests may share a cluster). */
  prefix: string;
  /** Time one endpoint has to answer, in ms. */
  timeoutMs: number;
}

/** etcd's default limit of operations in one transaction (--max-txn-ops). */
const MAX_TXN_OPS = 128;
const LIST_PAGE = 256;

interface RangeResponse {
  header?: EtcdHeader;
  kvs?: EtcdKv[];
  more?: boolean;
}

interface TxnResponse {
  header?: EtcdHeader;
  succeeded?: boolean;
  responses?: { response_range?: RangeResponse }[];
}

/** The store's key-value interface on an etcd v3 cluster. */
export class EtcdBackend implements KeyValueBackend {
  /** "etcd". */
  readonly name = "etcd";
  /** etcd's watch sees every host's writes. */
  readonly watchesOthers = true;
  /** A sum is a compared put: the store counts keys instead. */
  readonly sums = false;
  /** etcd's limit of operations per transaction. */
  readonly maxOperations: number = MAX_TXN_OPS;
  /** etcd's limit of operations per transaction. */
  readonly maxMutations: number = MAX_TXN_OPS;
  readonly #client: EtcdClient;
  readonly #prefix: string;
  readonly #closing = new AbortController();
  #revision = 0;

  /** A backend on the cluster at `endpoints`. */
  constructor(options: EtcdBackendOptions) {
    this.#client = new EtcdClient({ endpoints: options.endpoints, timeoutMs: options.timeoutMs });
    this.#prefix = options.prefix;
  }

  /** One range for one key; a transaction of ranges (one consistent revision) for several. */
  async getMany(keys: readonly StoreKey[]): Promise<StoreEntry[]> {
    if (keys.length === 0) return [];
    const encoded = keys.map((key) => encodeKey(this.#prefix, key));
    if (encoded.length === 1) {
      const answer = await this.#client.call<RangeResponse>("/v3/kv/range", { key: toBase64(encoded[0]!) });
      this.#saw(answer.header);
      return [this.#entry(keys[0]!, answer.kvs?.[0])];
    }
    const entries: StoreEntry[] = [];
    for (let start = 0; start < encoded.length; start += MAX_TXN_OPS) {
      const chunk = encoded.slice(start, start + MAX_TXN_OPS);
      const answer = await this.#client.call<TxnResponse>("/v3/kv/txn", {
        success: chunk.map((key) => ({ request_range: { key: toBase64(key) } })),
      });
      this.#saw(answer.header);
      chunk.forEach((_, index) => {
        const kv = answer.responses?.[index]?.response_range?.kvs?.[0];
        entries.push(this.#entry(keys[start + index]!, kv));
      });
    }
    return entries;
  }

  /** One count-only range. */
  async count(prefix: StoreKey): Promise<number> {
    const range = prefixRange(this.#prefix, prefix);
    const answer = await this.#client.call<RangeResponse & { count?: string }>("/v3/kv/range", {
      key: toBase64(range.key),
      range_end: toBase64(range.rangeEnd),
      count_only: true,
    });
    this.#saw(answer.header);
    return Number(answer.count ?? 0);
  }

  /** Pages through a range at the revision of its first page, in key order. */
  async *list(selector: StoreSelector, options: { batchSize?: number } = {}): AsyncIterable<StoreEntry> {
    const range = "prefix" in selector
      ? prefixRange(this.#prefix, selector.prefix)
      : { key: encodeKey(this.#prefix, selector.start), rangeEnd: encodeKey(this.#prefix, selector.end) };
    for await (const page of this.#pages(range, options.batchSize ?? LIST_PAGE)) yield* page.entries;
  }

  /** The pages of a range, each with the revision the whole listing reads at. */
  async *#pages(
    range: { key: string; rangeEnd: string },
    limit: number,
  ): AsyncIterable<{ entries: StoreEntry[]; revision: string }> {
    let from = range.key;
    let revision: string | undefined;
    while (true) {
      const answer: RangeResponse = await this.#client.call<RangeResponse>("/v3/kv/range", {
        key: toBase64(from),
        range_end: toBase64(range.rangeEnd),
        limit,
        ...(revision ? { revision } : {}),
      });
      this.#saw(answer.header);
      revision ??= answer.header?.revision ?? "0";
      const kvs = answer.kvs ?? [];
      yield { entries: kvs.map((kv) => this.#entry(decodeKey(this.#prefix, fromBase64(kv.key)), kv)), revision };
      if (!answer.more || kvs.length === 0) return;
      from = fromBase64(kvs[kvs.length - 1]!.key) + "\0";
    }
  }

  /**
   * One transaction: every check a mod_revision compare, then (in the
   * success branch) ranges of the `readBefore` keys, then the writes; the
   * ranges see exactly what the writes replace.
   */
  async commit(
    checks: readonly StoreCheck[],
    mutations: readonly StoreMutation[],
    readBefore?: readonly StoreKey[],
  ): Promise<StoreCommitResult> {
    const compare = checks.map((check) => this.#compare(check.key, check.version));
    const writes = collapse(this.#prefix, mutations);
    // Counters: read, compare their revision, put the sum.
    const sums = [...writes.values()].filter((write) => write.type === "sum");
    if (sums.length > 0) {
      const current = await this.getMany(sums.map((write) => write.key));
      current.forEach((entry, index) => {
        const write = sums[index]!;
        compare.push(this.#compare(entry.key, entry.version));
        writes.set(encodeKey(this.#prefix, write.key), {
          type: "set",
          key: write.key,
          value: (typeof entry.value === "number" ? entry.value : 0) + write.delta,
        });
      });
    }
    const reads = (readBefore ?? []).map((key) => ({ request_range: { key: toBase64(encodeKey(this.#prefix, key)) } }));
    const success = [
      ...reads,
      ...[...writes.entries()].map(([key, write]) =>
        write.type === "delete" ? { request_delete_range: { key: toBase64(key) } } : {
          request_put: { key: toBase64(key), value: toBase64(JSON.stringify((write as { value: unknown }).value)) },
        }
      ),
    ];
    const answer = await this.#client.call<TxnResponse>("/v3/kv/txn", { compare, success });
    this.#saw(answer.header);
    if (!answer.succeeded) return { ok: false };
    const version = answer.header?.revision ?? "0";
    if (!readBefore) return { ok: true, version };
    const before = readBefore.map((key, index) =>
      this.#entry(key, answer.responses?.[index]?.response_range?.kvs?.[0])
    );
    return { ok: true, version, before };
  }

  /** A snapshot of the prefix, then its changes from the watch, again after every lost watch. */
  follow(prefix: StoreKey, listener: FollowListener, signal: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([signal, this.#closing.signal]);
    return followPrefix({
      client: this.#client,
      range: prefixRange(this.#prefix, prefix),
      list: () => this.#listAll(prefix),
      decode: (kv) => this.#entry(decodeKey(this.#prefix, fromBase64(kv.key)), kv),
      listener,
      signal: stop,
    });
  }

  /** Reachability, the endpoint in use and the newest revision seen. */
  status(): BackendStatus {
    const state = this.#client.state();
    return {
      backend: "etcd",
      reachable: state.reachable,
      lastContactMs: state.lastContactMs,
      details: {
        endpoints: this.#client.endpoints,
        endpoint: state.endpoint,
        revision: this.#revision,
        ...(state.lastError && !state.reachable ? { error: state.lastError } : {}),
      },
    };
  }

  /** Stops every watch. */
  close(): void {
    this.#closing.abort();
  }

  async #listAll(prefix: StoreKey): Promise<{ entries: StoreEntry[]; revision: string }> {
    const entries: StoreEntry[] = [];
    let revision = "0";
    for await (const page of this.#pages(prefixRange(this.#prefix, prefix), LIST_PAGE)) {
      entries.push(...page.entries);
      revision = page.revision;
    }
    return { entries, revision };
  }

  #compare(key: StoreKey, version: string | null) {
    return {
      key: toBase64(encodeKey(this.#prefix, key)),
      target: "MOD",
      result: "EQUAL",
      mod_revision: version ?? "0",
    };
  }

  #entry(key: StoreKey, kv: EtcdKv | undefined): StoreEntry {
    if (kv === undefined) return { key, value: null, version: null };
    const value = kv.value === undefined ? null : JSON.parse(fromBase64(kv.value));
    return { key, value, version: kv.mod_revision ?? null };
  }

  #saw(header: EtcdHeader | undefined): void {
    const revision = Number(header?.revision ?? 0);
    if (revision > this.#revision) this.#revision = revision;
  }
}

/** The writes of a commit by etcd key: the last set or delete of a key wins, sums add up. */
function collapse(prefix: string, mutations: readonly StoreMutation[]): Map<string, StoreMutation> {
  const writes = new Map<string, StoreMutation>();
  for (const mutation of mutations) {
    const id = encodeKey(prefix, mutation.key);
    const before = writes.get(id);
    if (mutation.type === "sum" && before?.type === "sum") {
      writes.set(id, { ...mutation, delta: before.delta + mutation.delta });
    } else {
      writes.set(id, mutation);
    }
  }
  return writes;
}
