/**
 * An atomic operation that remembers the keys it writes, so that a commit
 * can be taken back: the commit reports the values those keys held right
 * before it (Deno KV reads and checks them first; etcd reads them in the
 * same transaction); `undo()` writes them back unless another writer has
 * changed one of the keys since.
 *
 * @module
 */

import type { KeyValueBackend, StoreCheck, StoreCommitResult, StoreEntry, StoreKey, StoreMutation } from "./backend.ts";

/** An atomic operation on a backend whose writes can be taken back once committed. */
export class UndoableAtomic {
  readonly #backend: KeyValueBackend;
  readonly #checks: StoreCheck[] = [];
  readonly #mutations: StoreMutation[] = [];
  readonly #keys = new Map<string, StoreKey>();
  /** What each counter was changed by, so undo subtracts it again. */
  readonly #sums = new Map<string, number>();
  #before: StoreEntry[] = [];
  #version: string | null = null;

  /** A new operation on `backend`. */
  constructor(backend: KeyValueBackend) {
    this.#backend = backend;
  }

  /** Adds checks: each entry's key must still have the version it was read with. */
  check(...entries: StoreEntry[]): this {
    for (const entry of entries) this.#checks.push({ key: entry.key, version: entry.version });
    return this;
  }

  /** Sets a key. */
  set(key: StoreKey, value: unknown): this {
    this.#touch(key);
    this.#mutations.push({ type: "set", key, value });
    return this;
  }

  /** Deletes a key. */
  delete(key: StoreKey): this {
    this.#touch(key);
    this.#mutations.push({ type: "delete", key });
    return this;
  }

  /** Adds to a counter. */
  sum(key: StoreKey, delta: number): this {
    const id = this.#touch(key);
    this.#sums.set(id, (this.#sums.get(id) ?? 0) + delta);
    this.#mutations.push({ type: "sum", key, delta });
    return this;
  }

  /** Commits, learning what the written keys held right before (the backend reads them with the commit). */
  async commit(): Promise<StoreCommitResult> {
    const result = await this.#backend.commit(this.#checks, this.#mutations, [...this.#keys.values()]);
    if (result.ok) {
      this.#version = result.version;
      this.#before = result.before ?? [];
    }
    return result;
  }

  /**
   * Writes back what the keys held before the commit, returning the
   * version of that write; null (and nothing written) when another writer
   * has changed one of them since.
   */
  async undo(): Promise<string | null> {
    if (this.#version === null) return null;
    const now = await this.#backend.getMany(this.#before.map((entry) => entry.key));
    const ours = now.every((entry) => entry.version === null || entry.version === this.#version);
    if (!ours) return null;
    const mutations: StoreMutation[] = [];
    for (const entry of this.#before) {
      const delta = this.#sums.get(keyId(entry.key));
      if (entry.version === null) mutations.push({ type: "delete", key: entry.key });
      else if (delta !== undefined) mutations.push({ type: "sum", key: entry.key, delta: -delta });
      else mutations.push({ type: "set", key: entry.key, value: entry.value });
    }
    const checks = now.map((entry) => ({ key: entry.key, version: entry.version }));
    const result = await this.#backend.commit(checks, mutations);
    return result.ok ? result.version : null;
  }

  #touch(key: StoreKey): string {
    const id = keyId(key);
    this.#keys.set(id, key);
    return id;
  }
}

function keyId(key: StoreKey): string {
  return JSON.stringify(key);
}
