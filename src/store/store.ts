/**
 * Every store key and transaction, on any backend (backend.ts: Deno KV or
 * etcd). An instance and its indexes (name, MAC, address) are written in one
 * atomic commit guarded by checks of every key read, so two uploads — in
 * this process, in another one sharing the store, or on another host of the
 * fleet — never hold the same name, MAC or address.
 *
 * Keys:
 * - ["instances", uuid] → Instance
 * - ["by_name", name] → uuid
 * - ["by_mac", mac] → uuid
 * - ["by_ipv4", address as number] → uuid (numbers sort, so the pool is scanned in order)
 * - ["by_instance_id", instance-id] → uuid
 * - ["access", uuid], ["boots", uuid] → boot tracking (access.ts, boots.ts), removed with the instance
 * - ["ipam", "cursor"] → last address handed out (number)
 * - ["ipam", "allocated"] → counter of held addresses
 *
 * Guests are identified by address on every metadata request, so
 * `getByIpv4` keeps what it read in memory for a short time (see
 * ADDRESS_CACHE_TTL_MS): a change made through this store (upload, delete,
 * state) replaces the entries it touches at once; a change made by another
 * process is seen within the time to live on Deno KV (its watch does not
 * see those), and as soon as the watch reports it on etcd (`follow()`,
 * remote.ts).
 *
 * @module
 */

import { Committer, MAX_COMMIT_ATTEMPTS } from "./_committer.ts";
import { ADDRESS_CACHE_TTL_MS, AddressCache } from "./_address_cache.ts";
import { heldAddresses } from "./_allocation.ts";
import {
  type BackendStatus,
  getOne,
  type KeyValueBackend,
  type StoreEntry,
  type StoreKey,
  type StoreMutation,
  type StoreSelector,
} from "./backend.ts";
import { InstanceMirror, type MirrorStatus } from "./_mirror.ts";
import { StoreUnavailableError } from "./errors.ts";
import type { Instance } from "./instance.ts";
import { type InstancePassword, withoutClearPassword, withPassword } from "./password.ts";
import { type PostOutcome, withPostedPassword } from "./posted_password.ts";
import { asBackend } from "./kv_backend.ts";
import type { UndoableAtomic } from "./_undo.ts";
import { planUpsert } from "./_upsert_plan.ts";
import { removalOf } from "./_removal.ts";
import type { AdoptOptions, Registration, StoreEvent, StoreOptions, UploadKind } from "./store_types.ts";
import { type Ipv4Pool, parseIpv4 } from "../ipam/ipv4.ts";

export type { AdoptOptions, Registration, StoreEvent, StoreOptions, UploadKind } from "./store_types.ts";
export { ADDRESS_CACHE_TTL_MS } from "./_address_cache.ts";

/** Longest reference looked up by key; KV refuses keys over 2 KiB, and no name, MAC or id comes near this. */
const MAX_REFERENCE_LENGTH = 512;
/** Instances one deleteMany() commit removes at most (fewer where the backend takes fewer writes). */
const DELETE_BATCH = 50;

/** The instance store over one key-value backend (Deno KV or etcd). */
export class InstanceStore {
  /** The backend every key lives in. */
  readonly backend: KeyValueBackend;
  /** The pool addresses are allocated from. */
  readonly pool: Ipv4Pool;
  readonly #location: string;
  readonly #host: string | null;
  readonly #now: () => Date;
  readonly #listeners: ((event: StoreEvent) => void | Promise<void>)[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  readonly #committer: Committer;
  readonly #cache: AddressCache;
  /** Set by `follow()`: every instance as the watch last reported it. */
  #mirror: InstanceMirror | null = null;

  /** A store over a backend, or over a Deno KV database. */
  constructor(backend: KeyValueBackend | Deno.Kv, options: StoreOptions) {
    this.backend = asBackend(backend);
    this.pool = options.pool;
    this.#location = options.location;
    this.#host = options.host ?? null;
    this.#now = options.now ?? (() => new Date());
    this.#cache = new AddressCache(options.addressCacheTtlMs ?? ADDRESS_CACHE_TTL_MS);
    this.#committer = new Committer(options.contention ?? null, options.spaceProbeDir ?? null);
    if (options.onChange) this.#listeners.push(options.onChange);
  }

  /** Adds a listener called after every committed change. */
  subscribe(listener: (event: StoreEvent) => void | Promise<void>): void {
    this.#listeners.push(listener);
  }

  /**
   * On a backend that sees other hosts' writes (etcd): keeps every instance
   * in memory as the watch reports it, serves lookups by address from it
   * (also while the backend cannot be reached: the last known state), and
   * tells the listeners of other hosts' changes. Resolves once the first
   * snapshot is in; does nothing on Deno KV.
   */
  async follow(signal: AbortSignal, onLost?: (error: unknown) => void): Promise<void> {
    if (!this.backend.watchesOthers) return;
    const mirror = new InstanceMirror((event) => this.#emit(event).catch(() => {}), onLost);
    await this.backend.follow(["instances"], mirror, signal);
    this.#mirror = mirror;
  }

  /** What the watch-fed copy holds: its state for /health and metrics, or null when not following. */
  mirrorStatus(): MirrorStatus | null {
    return this.#mirror?.status() ?? null;
  }

  /** The backend's state and the watch's, for /health and metrics. */
  status(): BackendStatus & { watch: MirrorStatus | null } {
    return { ...this.backend.status(), watch: this.mirrorStatus() };
  }

  /**
   * Stores a registration: a known domain keeps its address and instance-id;
   * a new one gets the next free address. Throws AddressConflictError (a MAC
   * held by another domain), PoolFullError, RecordTooLargeError, StoreBusyError
   * or StoreUnavailableError. `upload`: what the upload is (UploadKind); a
   * live migration arriving on this host moves the record here and
   * listeners keep the guest's boot state; one ahead of a start begins no boot.
   */
  upsert(
    registration: Registration,
    adopt: AdoptOptions = {},
    upload: UploadKind = "start",
  ): Promise<{ instance: Instance; created: boolean }> {
    // Uploads in this process run one at a time so they never race for the
    // same address; the commit checks still guard against other processes.
    const result = this.#queue.then(() => this.#upsertOnce(registration, adopt, upload));
    this.#queue = result.catch(() => {});
    return result;
  }

  async #upsertOnce(registration: Registration, adopt: AdoptOptions, upload: UploadKind) {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      // In a fleet, after a conflict (another host took the address) look for a free one elsewhere in the pool.
      const span = this.pool.last - this.pool.first + 1;
      const from = attempt > 0 && this.backend.watchesOthers
        ? this.pool.first + Math.floor(Math.random() * span)
        : undefined;
      const outcome = await this.#tryUpsert(registration, adopt, from);
      if (outcome === null) continue;
      const { instance, previous, replaced } = outcome;
      try {
        await this.#emit({ type: "upsert", instance, previous, replaced, ...(upload === "start" ? {} : { upload }) });
      } catch (error) {
        // A listener could not follow (dnsmasq's records not written): the
        // upload is refused, so it must change nothing.
        await this.#takeBack(outcome.op, instance, previous, replaced);
        throw error;
      }
      return { instance, created: previous === null };
    }
    throw this.#committer.busy(`could not store "${registration.name}"`);
  }

  async #tryUpsert(registration: Registration, adopt: AdoptOptions, from: number | undefined) {
    const context = { location: this.#location, host: this.#host, now: this.#now };
    const { instance, existing, replaced, op } = await planUpsert(
      this.backend,
      this.pool,
      registration,
      adopt,
      from,
      context,
    );
    const version = await this.#committer.commit(op);
    if (version === null) return null;
    this.#forget(version, [existing?.ipv4, replaced?.ipv4, instance.ipv4], [instance], [replaced?.uuid]);
    return { instance, previous: existing, replaced, op };
  }

  /**
   * Undoes a committed upsert and tells the listeners what holds again, so
   * that they put back what they had already changed. Their failures here
   * are theirs to log: the caller reports the first one.
   */
  async #takeBack(op: UndoableAtomic, instance: Instance, previous: Instance | null, replaced: Instance | null) {
    const version = await op.undo();
    if (version === null) return;
    const gone = previous ? [] : [instance.uuid];
    this.#forget(version, [instance.ipv4, previous?.ipv4, replaced?.ipv4], [previous, replaced], gone);
    const events: StoreEvent[] = [];
    if (replaced) {
      events.push({ type: "upsert", instance: replaced, previous: null, replaced: instance, takenBack: true });
    }
    if (previous) {
      events.push({ type: "upsert", instance: previous, previous: instance, replaced: null, takenBack: true });
    }
    if (!previous && !replaced) events.push({ type: "delete", instance });
    for (const event of events) await this.#emit(event).catch(() => {});
  }

  /**
   * The instance holding an address, by index (never a scan). Served from
   * the watch-fed copy when following (etcd), else from memory when read
   * less than the cache's time to live ago; the object is frozen, since
   * callers share it.
   */
  async getByIpv4(address: string): Promise<Instance | null> {
    const value = parseIpv4(address);
    if (value === null) return null;
    if (this.#mirror !== null) {
      const known = this.#mirror.byAddress(value);
      if (known !== undefined) return known;
      // Registered a moment ago on another host, before its watch event: read it.
      try {
        return await this.#follow(["by_ipv4", value]);
      } catch (error) {
        if (error instanceof StoreUnavailableError) return null;
        throw error;
      }
    }
    if (!this.#cache.enabled) return await this.#follow(["by_ipv4", value]);
    const cached = this.#cache.get(value);
    if (cached !== undefined) return cached;
    const generation = this.#cache.generation;
    const instance = await this.#follow(["by_ipv4", value]);
    if (instance === null) {
      // Strangers are not cached: a guest registered by another process is known at once.
      this.#cache.drop(value);
      return null;
    }
    return this.#cache.put(value, instance, generation);
  }

  /**
   * The instance the address cache holds for an address while it is fresh
   * (when following, the watch-fed copy's), without reading the store:
   * undefined when it holds none (a stranger, a guest not read lately, one a
   * change dropped), so the caller asks getByIpv4. The address as text, or
   * as its number (parseIpv4).
   */
  peekByIpv4(address: string | number): Instance | undefined {
    const value = typeof address === "number" ? address : parseIpv4(address);
    if (value === null) return undefined;
    // Following (etcd): the watch-fed copy is what getByIpv4 answers from, and it is never stale by a time to live.
    if (this.#mirror !== null) return this.#mirror.byAddress(value);
    if (!this.#cache.enabled) return undefined;
    return this.#cache.get(value);
  }

  /**
   * Drops cached lookups of these addresses after a commit at `version`, and
   * keeps what it wrote, as a read right after would find it: in the mirror
   * when following, else in the address cache (so a start's first lookup reads nothing).
   */
  #forget(
    version: string,
    addresses: (string | null | undefined)[],
    written: (Instance | null | undefined)[] = [],
    deleted: (string | null | undefined)[] = [],
  ): void {
    const values = addresses.map((address) => address ? parseIpv4(address) : null);
    this.#cache.forget(values.filter((value): value is number => value !== null));
    if (this.#mirror === null) {
      for (const instance of written) if (instance?.ipv4) this.#cache.keepWritten(parseIpv4(instance.ipv4)!, instance);
      return;
    }
    for (const instance of written) if (instance) this.#mirror.apply(instance.uuid, instance, Number(version));
    for (const uuid of deleted) if (uuid) this.#mirror.apply(uuid, null, Number(version));
  }

  /** The instance with a MAC. */
  getByMac(mac: string): Promise<Instance | null> {
    return this.#follow(["by_mac", mac.toLowerCase()]);
  }

  /** The instance with a domain name. */
  getByName(name: string): Promise<Instance | null> {
    return this.#follow(["by_name", name]);
  }

  /** The instance with a domain UUID. */
  async getByUuid(uuid: string): Promise<Instance | null> {
    return (await getOne<Instance>(this.backend, ["instances", uuid.toLowerCase()])).value;
  }

  /** Finds an instance by name, UUID, instance-id, MAC or address. */
  async find(reference: string): Promise<Instance | null> {
    const ref = reference.trim();
    if (/^[0-9a-f-]{36}$/i.test(ref)) return await this.getByUuid(ref);
    if (/^i-/.test(ref)) return await this.#follow(["by_instance_id", ref]);
    if (/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(ref)) return await this.getByMac(ref);
    if (parseIpv4(ref) !== null) return await this.getByIpv4(ref);
    return await this.getByName(ref);
  }

  async #follow(key: StoreKey): Promise<Instance | null> {
    // A reference longer than KV allows in a key names nothing stored.
    if (key.some((part) => typeof part === "string" && part.length > MAX_REFERENCE_LENGTH)) return null;
    const uuid = (await getOne<string>(this.backend, key)).value;
    if (uuid === null) return null;
    return (await getOne<Instance>(this.backend, ["instances", uuid])).value;
  }

  /**
   * Every instance, in UUID order; a page of them with `limit` (at most that
   * many) and `after` (only UUIDs after this one: the last of the page before).
   */
  async *list(page: { limit?: number; after?: string } = {}): AsyncIterable<Instance> {
    const after = page.after?.toLowerCase();
    let left = page.limit ?? Infinity;
    if (left <= 0) return;
    const selector: StoreSelector = after === undefined
      ? { prefix: ["instances"] }
      : { start: ["instances", after], end: ["instances", "\uffff"] };
    // The start is inclusive: the instance named by `after` is skipped, and one more read for it.
    const batchSize = Number.isFinite(left) ? Math.min(1000, left + 1) : undefined;
    for await (const entry of this.backend.list(selector, batchSize === undefined ? {} : { batchSize })) {
      if (entry.key[1] === after) continue;
      yield entry.value as Instance;
      if (--left <= 0) return;
    }
  }

  /** How many addresses are held. */
  async allocatedCount(): Promise<number> {
    return await heldAddresses(this.backend);
  }

  /** Removes an instance and releases its address; false when it was not there. */
  async delete(uuid: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const entry = await getOne<Instance>(this.backend, ["instances", uuid]);
      const instance = entry.value;
      if (instance === null) return false;
      const mutations = removalOf([instance], this.backend.sums);
      const version = await this.#committer.commit({ commit: () => this.backend.commit([entry], mutations) });
      if (version !== null) {
        this.#forget(version, [instance.ipv4], [], [uuid]);
        await this.#emit({ type: "delete", instance });
        return true;
      }
    }
    throw this.#committer.busy(`could not delete instance ${uuid}`);
  }

  /**
   * Removes many instances in few commits (up to DELETE_BATCH a commit,
   * each guarded by its instance's version); the instances removed. A batch
   * that loses a race is removed one by one instead.
   */
  async deleteMany(uuids: string[]): Promise<Instance[]> {
    const removed: Instance[] = [];
    // Six deletes and a check per instance, and one counter for the batch.
    const perCommit = Math.max(
      1,
      Math.min(DELETE_BATCH, this.backend.maxOperations, Math.floor((this.backend.maxMutations - 1) / 6)),
    );
    for (let start = 0; start < uuids.length; start += perCommit) {
      const batch = uuids.slice(start, start + perCommit);
      const entries = (await this.backend.getMany(batch.map((uuid) => ["instances", uuid])))
        .filter((entry) => entry.value !== null) as StoreEntry<Instance>[];
      const mutations = removalOf(entries.map((entry) => entry.value!), this.backend.sums);
      const version = entries.length === 0
        ? null
        : await this.#committer.commit({ commit: () => this.backend.commit(entries, mutations) });
      if (version !== null) {
        for (const entry of entries) {
          this.#forget(version, [entry.value!.ipv4], [], [entry.value!.uuid]);
          removed.push(entry.value!);
          await this.#emit({ type: "delete", instance: entry.value! });
        }
        continue;
      }
      for (const entry of entries) if (await this.delete(entry.value!.uuid)) removed.push(entry.value!);
    }
    return removed;
  }

  /**
   * Marks an instance stopped (its address is kept); null when unknown. A
   * stop reported by another host than the one it runs on (the source of a
   * live migration, whose `release end` comes after the destination's
   * upload) changes nothing: the instance is returned as it is.
   */
  setState(uuid: string, state: Instance["state"]): Promise<Instance | null> {
    return this.#update(uuid, (instance) =>
      this.#runsElsewhere(instance) ? null : ({
        ...instance,
        state,
        stoppedAt: state === "stopped" ? this.#now().toISOString() : null,
      }));
  }

  /** Sets the instance's password, or with null removes it and the posted one (password.ts); null: unknown. */
  setPassword(uuid: string, password: InstancePassword | null): Promise<Instance | null> {
    return this.#update(uuid, (instance) => withPassword(instance, password));
  }

  /** Keeps the password the guest posted, once (posted_password.ts): of posts racing, exactly one is kept. */
  async postPassword(uuid: string, encrypted: string): Promise<PostOutcome> {
    let outcome: PostOutcome = "conflict";
    const updated = await this.#update(uuid, (instance) => {
      const kept = withPostedPassword(instance, encrypted, this.#now());
      outcome = kept === null ? "conflict" : "kept";
      return kept;
    });
    return updated === null ? "unknown" : outcome;
  }

  /**
   * Forgets the clear text of the password once delivered, and returns it:
   * of callers racing, exactly one gets it (`hash`: only that password's).
   */
  async takeClearPassword(uuid: string, hash?: string): Promise<string | null> {
    let taken: string | null = null;
    await this.#update(uuid, (instance) => {
      const change = withoutClearPassword(instance, hash);
      taken = change?.clear ?? null;
      return change?.instance ?? null;
    });
    return taken;
  }

  /** Whether the record says another host runs the instance (its last upload came from there). */
  #runsElsewhere(instance: Instance): boolean {
    return this.#host !== null && instance.host !== undefined && instance.host !== this.#host;
  }

  /** Applies `change` to a record; a change that answers null leaves it as it is. */
  async #update(uuid: string, change: (instance: Instance) => Instance | null): Promise<Instance | null> {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const entry = await getOne<Instance>(this.backend, ["instances", uuid]);
      if (entry.value === null) return null;
      const updated = change(entry.value);
      if (updated === null) return entry.value;
      const write: StoreMutation = { type: "set", key: ["instances", uuid], value: updated };
      const version = await this.#committer.commit({ commit: () => this.backend.commit([entry], [write]) });
      if (version !== null) {
        this.#forget(version, [entry.value.ipv4, updated.ipv4], [updated]);
        return updated;
      }
    }
    throw this.#committer.busy(`could not update instance ${uuid}`);
  }

  async #emit(event: StoreEvent) {
    for (const listener of this.#listeners) await listener(event);
  }
}
