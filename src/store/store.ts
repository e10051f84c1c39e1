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
 * - ["ipam", "cursor"] → last address handed out (number)
 * - ["ipam", "allocated"] → counter of held addresses
 *
 * Guests are identified by address on every metadata request, so
 * `getByIpv4` keeps what it read in memory for a short time (see
 * ADDRESS_CACHE_TTL_MS): a change made through this store (upload, delete,
 * state) drops the entries it touches at once; a change made by another
 * process is seen within the time to live on Deno KV (its watch does not
 * see those), and as soon as the watch reports it on etcd (`follow()`,
 * remote.ts).
 *
 * @module
 */

import { serialize } from "node:v8";
import { folderIsFull } from "../io/no_space.ts";
import type { EventCounter } from "../log/burst_log.ts";
import { sleep } from "../io/sleep.ts";
import { AddressCache } from "./_address_cache.ts";
import { claimAddress, findFreeAddress, heldAddresses } from "./_allocation.ts";
import {
  type BackendStatus,
  getOne,
  type KeyValueBackend,
  type StoreCommitResult,
  type StoreEntry,
  type StoreKey,
  type StoreMutation,
} from "./backend.ts";
import { InstanceMirror, type MirrorStatus } from "./_mirror.ts";
import {
  AddressConflictError,
  InstanceIdConflictError,
  RecordTooLargeError,
  StoreBusyError,
  StoreFullError,
  StoreUnavailableError,
} from "./errors.ts";
import { type Instance, instanceIdFromUuid } from "./instance.ts";
import { asBackend } from "./kv_backend.ts";
import { UndoableAtomic } from "./_undo.ts";
import { formatIpv4, type Ipv4Pool, parseIpv4, poolContains } from "../ipam/ipv4.ts";

/** What an upload registers: the domain's identity on the managed network, as the record keeps it. */
export type Registration = Pick<Instance, "uuid" | "name" | "mac" | "vcpus" | "memoryMiB" | "metadata" | "tags">;

/** How an import pins what an upload would choose (md_server migration). */
export interface AdoptOptions {
  /** The address the instance already has; must be free or its own. */
  ipv4?: string;
  /** The instance-id the guest already knows. */
  instanceId?: string;
}

/** A change to the set of instances, for whoever mirrors it (dnsmasq). */
export type StoreEvent =
  | {
    type: "upsert";
    instance: Instance;
    previous: Instance | null;
    replaced: Instance | null;
    /** Set when this puts back what a refused upsert had changed (listeners undo their part, nothing more). */
    takenBack?: boolean;
    /** Set when another host made the change (seen by the watch); that host did the rest. */
    remote?: boolean;
    /** Set when the upload is a live migration arriving here: the guest keeps running, its boot is not new. */
    migration?: boolean;
  }
  | { type: "delete"; instance: Instance; remote?: boolean };

/** What the store needs besides its backend. */
export interface StoreOptions {
  /** The pool addresses are allocated from. */
  pool: Ipv4Pool;
  /** `[service] location`, kept in each record. */
  location: string;
  /** This host's name (`[service] hostname`), kept in each record it uploads; default none. */
  host?: string;
  /** The clock; default the wall clock. */
  now?: () => Date;
  /** A listener called after every committed change. */
  onChange?: (event: StoreEvent) => void | Promise<void>;
  /** How long `getByIpv4` trusts what it read, in ms; 0 reads the store every time. Default ADDRESS_CACHE_TTL_MS. */
  addressCacheTtlMs?: number;
  /** Where commit conflicts and failures are counted (one log line per burst). */
  contention?: EventCounter;
  /** The folder of the KV file: a failed commit probes it for space (StoreFullError). Default: no probe. */
  spaceProbeDir?: string;
}

/**
 * Default time to live of the address cache. Long enough that a booting
 * guest's dozens of requests cost one store read or a few instead of two
 * each; short enough that a change written by another process (md_server
 * import, a second mdserver on shared storage) reaches guests within seconds.
 */
export const ADDRESS_CACHE_TTL_MS = 10_000;

const MAX_COMMIT_ATTEMPTS = 64;
/** Largest value Deno KV stores, in bytes of its serialization (the limit on every backend). */
const MAX_VALUE_BYTES = 65_536;
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
  readonly #spaceProbeDir: string | null;
  readonly #contention: EventCounter | null;
  readonly #cache: AddressCache;
  /** Why the last commit failed, for the StoreBusyError that ends the retries. */
  #lastCommitError: unknown = null;
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
    this.#spaceProbeDir = options.spaceProbeDir ?? null;
    this.#contention = options.contention ?? null;
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
   * or StoreUnavailableError. `migration`: a live migration arriving on this
   * host (the record moves here; listeners keep the guest's boot state).
   */
  upsert(
    registration: Registration,
    adopt: AdoptOptions = {},
    migration = false,
  ): Promise<{ instance: Instance; created: boolean }> {
    // Uploads in this process run one at a time so they never race for the
    // same address; the commit checks still guard against other processes.
    const result = this.#queue.then(() => this.#upsertOnce(registration, adopt, migration));
    this.#queue = result.catch(() => {});
    return result;
  }

  async #upsertOnce(registration: Registration, adopt: AdoptOptions, migration: boolean) {
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
        await this.#emit({ type: "upsert", instance, previous, replaced, ...(migration ? { migration } : {}) });
      } catch (error) {
        // A listener could not follow (dnsmasq's records not written): the
        // upload is refused, so it must change nothing.
        await this.#takeBack(outcome.op, instance, previous, replaced);
        throw error;
      }
      return { instance, created: previous === null };
    }
    throw this.#busy(`could not store "${registration.name}"`);
  }

  async #tryUpsert(registration: Registration, adopt: AdoptOptions, from: number | undefined) {
    const { uuid, name, mac } = registration;
    // The id a new domain gets and the cursor are read with the rest: one read for a usual upload.
    const newId = adopt.instanceId ?? instanceIdFromUuid(uuid);
    const [existingEntry, nameEntry, macEntry, newIdEntry, cursorEntry] = await this.backend.getMany(
      [["instances", uuid], ["by_name", name], ["by_mac", mac], ["by_instance_id", newId], ["ipam", "cursor"]],
    ) as [StoreEntry<Instance>, StoreEntry<string>, StoreEntry<string>, StoreEntry<string>, StoreEntry<number>];
    const existing = existingEntry.value;

    // A different domain with the same name is a redefinition of that host:
    // the new domain replaces the old record and inherits its address.
    let replaced: Instance | null = null;
    let replacedEntry: StoreEntry<Instance> | null = null;
    if (nameEntry.value !== null && nameEntry.value !== uuid) {
      replacedEntry = await getOne<Instance>(this.backend, ["instances", nameEntry.value]);
      replaced = replacedEntry.value;
    }
    if (macEntry.value !== null && macEntry.value !== uuid && macEntry.value !== replaced?.uuid) {
      const holder = await getOne<Instance>(this.backend, ["instances", macEntry.value]);
      throw new AddressConflictError(
        `MAC ${mac} already belongs to instance "${holder.value?.name ?? macEntry.value}"`,
      );
    }

    const keep = [existing?.ipv4, replaced?.ipv4].find((address) => {
      const value = address ? parseIpv4(address) : null;
      return value !== null && poolContains(this.pool, value);
    });
    let address = keep ? parseIpv4(keep)! : null;
    let addressEntry: StoreEntry | null = null;
    const allocating = address === null;
    if (address === null) {
      const found = adopt.ipv4 !== undefined
        ? await claimAddress(this.backend, this.pool, adopt.ipv4, uuid)
        : await findFreeAddress(this.backend, this.pool, from ?? cursorEntry.value);
      address = found.address;
      addressEntry = found.entry;
    }

    // Kept once set: an imported md_server instance keeps its old id.
    const instanceId = existing?.instanceId ?? newId;
    const idEntry = instanceId === newId
      ? newIdEntry
      : await getOne<string>(this.backend, ["by_instance_id", instanceId]);
    if (idEntry.value !== null && idEntry.value !== uuid && idEntry.value !== replaced?.uuid) {
      // Never take over another domain's id (its index would point here, and
      // DELETE by id would remove the wrong instance).
      const holder = await getOne<Instance>(this.backend, ["instances", idEntry.value]);
      throw new InstanceIdConflictError(
        `instance-id ${instanceId} of "${name}" already belongs to instance "${holder.value?.name ?? idEntry.value}"`,
      );
    }

    const now = this.#now().toISOString();
    const instance: Instance = {
      uuid,
      name,
      instanceId,
      mac,
      ipv4: formatIpv4(address),
      vcpus: registration.vcpus,
      memoryMiB: registration.memoryMiB,
      metadata: registration.metadata,
      tags: registration.tags,
      location: this.#location,
      ...(this.#host !== null ? { host: this.#host } : {}),
      state: "registered",
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      stoppedAt: null,
    };

    const op = new UndoableAtomic(this.backend).check(existingEntry, nameEntry, macEntry, idEntry);
    if (addressEntry) op.check(addressEntry);
    if (replacedEntry && replaced) {
      op.check(replacedEntry).delete(["instances", replaced.uuid])
        .delete(["by_instance_id", replaced.instanceId]);
      if (replaced.mac !== mac) op.delete(["by_mac", replaced.mac]);
      const replacedAddress = parseIpv4(replaced.ipv4);
      if (replacedAddress !== null && replacedAddress !== address) {
        op.delete(["by_ipv4", replacedAddress]);
        if (this.backend.sums) op.sum(["ipam", "allocated"], -1);
      }
    }
    if (existing) {
      if (existing.name !== name) op.delete(["by_name", existing.name]);
      if (existing.mac !== mac) op.delete(["by_mac", existing.mac]);
      const oldAddress = parseIpv4(existing.ipv4);
      if (oldAddress !== null && oldAddress !== address) {
        op.delete(["by_ipv4", oldAddress]);
        if (this.backend.sums) op.sum(["ipam", "allocated"], -1);
      }
    }
    op.set(["instances", uuid], instance)
      .set(["by_name", name], uuid)
      .set(["by_mac", mac], uuid)
      .set(["by_ipv4", address], uuid)
      .set(["by_instance_id", instance.instanceId], uuid);
    if (allocating) {
      op.set(["ipam", "cursor"], address);
      if (this.backend.sums) op.sum(["ipam", "allocated"], 1);
    }
    // KV refuses a value over 64 KiB: the domain brought too much metadata.
    if (serialize(instance).byteLength > MAX_VALUE_BYTES) {
      throw new RecordTooLargeError(
        `cannot store "${name}": its record is over the store's 64 KiB limit; keep its mdserver metadata and tags smaller`,
      );
    }
    const version = await this.#commit(op);
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

  /** Drops cached lookups of these addresses after a commit at `version`; the mirror takes what it wrote. */
  #forget(
    version: string,
    addresses: (string | null | undefined)[],
    written: (Instance | null | undefined)[] = [],
    deleted: (string | null | undefined)[] = [],
  ): void {
    const values = addresses.map((address) => address ? parseIpv4(address) : null);
    this.#cache.forget(values.filter((value): value is number => value !== null));
    if (this.#mirror === null) return;
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

  /** Every instance, in UUID order. */
  async *list(): AsyncIterable<Instance> {
    for await (const entry of this.backend.list({ prefix: ["instances"] })) {
      yield entry.value as Instance;
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
      const address = parseIpv4(instance.ipv4);
      const mutations: StoreMutation[] = instanceKeys(instance).map((key) => ({ type: "delete", key }));
      if (address !== null) {
        mutations.push({ type: "delete", key: ["by_ipv4", address] });
        if (this.backend.sums) mutations.push({ type: "sum", key: ["ipam", "allocated"], delta: -1 });
      }
      const version = await this.#commit({ commit: () => this.backend.commit([entry], mutations) });
      if (version !== null) {
        this.#forget(version, [instance.ipv4], [], [uuid]);
        await this.#emit({ type: "delete", instance });
        return true;
      }
    }
    throw this.#busy(`could not delete instance ${uuid}`);
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
      const mutations: StoreMutation[] = [];
      let released = 0;
      for (const entry of entries) {
        const instance = entry.value!;
        for (const key of instanceKeys(instance)) mutations.push({ type: "delete", key });
        const address = parseIpv4(instance.ipv4);
        if (address !== null) {
          mutations.push({ type: "delete", key: ["by_ipv4", address] });
          released++;
        }
      }
      if (released > 0 && this.backend.sums) {
        mutations.push({ type: "sum", key: ["ipam", "allocated"], delta: -released });
      }
      const version = entries.length === 0
        ? null
        : await this.#commit({ commit: () => this.backend.commit(entries, mutations) });
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
      const version = await this.#commit({ commit: () => this.backend.commit([entry], [write]) });
      if (version !== null) {
        this.#forget(version, [entry.value.ipv4, updated.ipv4], [updated]);
        return updated;
      }
    }
    throw this.#busy(`could not update instance ${uuid}`);
  }

  /**
   * Commits, returning the commit's version; null on a failed check or a failed commit, so the caller
   * reads again and retries (at most MAX_COMMIT_ATTEMPTS times, then
   * StoreBusyError). Deno KV reports another process holding the database
   * lock (shared storage) as a TypeError, as it does every refusal, so a
   * failure is not told apart by its text: the refusals that input can cause
   * (a value or key too large) are checked before committing. A backend that
   * cannot be reached (StoreUnavailableError) is not retried: it already
   * tried every endpoint.
   */
  async #commit(op: { commit(): Promise<StoreCommitResult> }): Promise<string | null> {
    try {
      const result = await op.commit();
      if (!result.ok) this.#contention?.note("a commit met a concurrent change, retrying");
      return result.ok ? result.version : null;
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      this.#contention?.note(`a commit failed, retrying: ${(error as Error).message}`);
      // Deno KV says nothing but SQLite's text of why a commit failed: a
      // full disk is told by trying to write beside the database.
      if (this.#spaceProbeDir !== null && await folderIsFull(this.#spaceProbeDir)) {
        throw new StoreFullError({ cause: error });
      }
      this.#lastCommitError = error;
      await sleep(2 + Math.random() * 20);
      return null;
    }
  }

  /** A StoreBusyError for `what`, with the last commit failure as its cause. */
  #busy(what: string): StoreBusyError {
    const cause = this.#lastCommitError;
    const last = cause instanceof Error ? ` (last failure: ${cause.message})` : "";
    return new StoreBusyError(`${what}: the store stayed busy after ${MAX_COMMIT_ATTEMPTS} attempts${last}`, { cause });
  }

  async #emit(event: StoreEvent) {
    for (const listener of this.#listeners) await listener(event);
  }
}

/** The keys an instance holds besides its address: its record, its name, MAC and id indexes, its access record. */
function instanceKeys(instance: Instance): StoreKey[] {
  return [
    ["instances", instance.uuid],
    ["by_name", instance.name],
    ["by_mac", instance.mac],
    ["by_instance_id", instance.instanceId],
    ["access", instance.uuid],
  ];
}
