/**
 * An atomic operation that remembers the keys it writes, so that a commit
 * can be taken back: before committing, the values those keys held are read
 * (and checked, so they are exactly what the commit replaces); `undo()`
 * writes them back unless another writer has changed one of the keys since.
 *
 * @module
 */

/** Deno KV reads at most this many keys in one getMany. */
const GET_MANY_LIMIT = 10;

/** An atomic operation over `kv` whose writes can be taken back once committed. */
export class UndoableAtomic {
  readonly #kv: Deno.Kv;
  readonly #op: Deno.AtomicOperation;
  readonly #keys = new Map<string, Deno.KvKey>();
  #before: Deno.KvEntryMaybe<unknown>[] = [];
  #versionstamp: string | null = null;

  /** A new operation on `kv`. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
    this.#op = kv.atomic();
  }

  /** Adds checks, as AtomicOperation.check. */
  check(...checks: Deno.AtomicCheck[]): this {
    this.#op.check(...checks);
    return this;
  }

  /** Sets a key, as AtomicOperation.set. */
  set(key: Deno.KvKey, value: unknown): this {
    this.#touch(key);
    this.#op.set(key, value);
    return this;
  }

  /** Deletes a key, as AtomicOperation.delete. */
  delete(key: Deno.KvKey): this {
    this.#touch(key);
    this.#op.delete(key);
    return this;
  }

  /** Adds to a counter, as AtomicOperation.sum. */
  sum(key: Deno.KvKey, n: bigint): this {
    this.#touch(key);
    this.#op.sum(key, n);
    return this;
  }

  /** Reads what the written keys hold now and checks it stays so until the commit; then commits. */
  async commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    this.#before = await readMany(this.#kv, [...this.#keys.values()]);
    this.#op.check(...this.#before);
    const result = await this.#op.commit();
    if (result.ok) this.#versionstamp = result.versionstamp;
    return result;
  }

  /**
   * Writes back what the keys held before the commit; false (and nothing
   * written) when another writer has changed one of them since.
   */
  async undo(): Promise<boolean> {
    if (this.#versionstamp === null) return false;
    const now = await readMany(this.#kv, this.#before.map((entry) => entry.key));
    const ours = now.every((entry) => entry.versionstamp === null || entry.versionstamp === this.#versionstamp);
    if (!ours) return false;
    const op = this.#kv.atomic().check(...now);
    for (const entry of this.#before) {
      if (entry.versionstamp === null) op.delete(entry.key);
      else op.set(entry.key, entry.value);
    }
    return (await op.commit()).ok;
  }

  #touch(key: Deno.KvKey): void {
    this.#keys.set(JSON.stringify(key, (_, value) => typeof value === "bigint" ? `${value}n` : value), key);
  }
}

async function readMany(kv: Deno.Kv, keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
  const entries: Deno.KvEntryMaybe<unknown>[] = [];
  for (let start = 0; start < keys.length; start += GET_MANY_LIMIT) {
    entries.push(...await kv.getMany(keys.slice(start, start + GET_MANY_LIMIT)));
  }
  return entries;
}
