/**
 * Every Deno KV key and transaction. An instance and its indexes (name, MAC,
 * address) are written in one atomic commit guarded by `.check()`, so two
 * uploads — in this process or in another one sharing the store — never hold
 * the same name, MAC or address.
 *
 * Keys:
 * - ["instances", uuid] → Instance
 * - ["by_name", name] → uuid
 * - ["by_mac", mac] → uuid
 * - ["by_ipv4", address as number] → uuid (numbers sort, so the pool is scanned in order)
 * - ["by_instance_id", instance-id] → uuid
 * - ["ipam", "cursor"] → last address handed out (number)
 * - ["ipam", "allocated"] → Deno.KvU64 count of held addresses
 *
 * Guests are identified by address on every metadata request, so
 * `getByIpv4` keeps what it read in memory for a short time (see
 * ADDRESS_CACHE_TTL_MS): a change made through this store (upload, delete,
 * state) drops the entries it touches at once; a change made by another
 * process sharing the KV file (Deno KV's watch does not see those) is seen
 * within the time to live.
 *
 * @module
 */

import { serialize } from "node:v8";
import { folderIsFull } from "../io/no_space.ts";
import type { EventCounter } from "../log/burst_log.ts";
import { sleep } from "../io/sleep.ts";
import {
  AddressConflictError,
  AddressOutsidePoolError,
  InstanceIdConflictError,
  PoolFullError,
  RecordTooLargeError,
  StoreBusyError,
  StoreFullError,
} from "./errors.ts";
import { type Instance, instanceIdFromUuid } from "./instance.ts";
import type { InstancePassword } from "./password.ts";
import { UndoableAtomic } from "./_undo.ts";
import { formatIpv4, type Ipv4Pool, nextPoolAddress, parseIpv4, poolContains, poolSize } from "../ipam/ipv4.ts";

/** What an upload registers: the domain's identity on the managed network, as the record keeps it. */
export type Registration = Pick<
  Instance,
  "uuid" | "name" | "mac" | "vcpus" | "memoryMiB" | "metadata" | "tags" | "configDrive"
>;

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
  }
  | { type: "delete"; instance: Instance };

/** What the store needs besides KV. */
export interface StoreOptions {
  /** The pool addresses are allocated from. */
  pool: Ipv4Pool;
  /** `[service] location`, kept in each record. */
  location: string;
  /** The clock; default the wall clock. */
  now?: () => Date;
  /** A listener called after every committed change. */
  onChange?: (event: StoreEvent) => void | Promise<void>;
  /** How long `getByIpv4` trusts what it read, in ms; 0 reads KV every time. Default ADDRESS_CACHE_TTL_MS. */
  addressCacheTtlMs?: number;
  /** Where commit conflicts and failures are counted (one log line per burst). */
  contention?: EventCounter;
  /** The folder of the KV file: a failed commit probes it for space (StoreFullError). Default: no probe. */
  spaceProbeDir?: string;
}

/**
 * Default time to live of the address cache. Long enough that a booting
 * guest's dozens of requests cost one KV read or a few instead of two each;
 * short enough that a change written by another process (md_server import,
 * a second mdserver on shared storage) reaches guests within seconds.
 */
export const ADDRESS_CACHE_TTL_MS = 10_000;

/** An instance read by address, and until when it is trusted (performance.now()). */
interface CachedGuest {
  instance: Instance;
  expires: number;
}

const MAX_COMMIT_ATTEMPTS = 64;
/** Largest value Deno KV stores, in bytes of its serialization. */
const MAX_VALUE_BYTES = 65_536;
/** Longest reference looked up by key; KV refuses keys over 2 KiB, and no name, MAC or id comes near this. */
const MAX_REFERENCE_LENGTH = 512;
const ONE = 1n;
/** Instances one deleteMany() commit removes (KV allows 100 checks and 1000 mutations a commit). */
const DELETE_BATCH = 50;
const MINUS_ONE = 0xffffffffffffffffn; // sum() wraps: adding 2^64-1 subtracts 1

/** The instance store over one Deno KV database. */
export class InstanceStore {
  /** The Deno KV database. */
  readonly kv: Deno.Kv;
  /** The pool addresses are allocated from. */
  readonly pool: Ipv4Pool;
  readonly #location: string;
  readonly #now: () => Date;
  readonly #listeners: ((event: StoreEvent) => void | Promise<void>)[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  readonly #addressCacheTtlMs: number;
  readonly #spaceProbeDir: string | null;
  readonly #contention: EventCounter | null;
  readonly #byAddress = new Map<number, CachedGuest>();
  /** Bumped by every committed change, so a read that overlapped one is not cached. */
  #generation = 0;
  /** Why the last commit failed, for the StoreBusyError that ends the retries. */
  #lastCommitError: unknown = null;

  /** A store over `kv`. */
  constructor(kv: Deno.Kv, options: StoreOptions) {
    this.kv = kv;
    this.pool = options.pool;
    this.#location = options.location;
    this.#now = options.now ?? (() => new Date());
    this.#addressCacheTtlMs = options.addressCacheTtlMs ?? ADDRESS_CACHE_TTL_MS;
    this.#spaceProbeDir = options.spaceProbeDir ?? null;
    this.#contention = options.contention ?? null;
    if (options.onChange) this.#listeners.push(options.onChange);
  }

  /** Adds a listener called after every committed change. */
  subscribe(listener: (event: StoreEvent) => void | Promise<void>): void {
    this.#listeners.push(listener);
  }

  /**
   * Stores a registration: a known domain keeps its address and instance-id;
   * a new one gets the next free address. Throws AddressConflictError (a MAC
   * held by another domain), PoolFullError, RecordTooLargeError or StoreBusyError.
   */
  upsert(
    registration: Registration,
    adopt: AdoptOptions = {},
  ): Promise<{ instance: Instance; created: boolean }> {
    // Uploads in this process run one at a time so they never race for the
    // same address; the commit checks still guard against other processes.
    const result = this.#queue.then(() => this.#upsertOnce(registration, adopt));
    this.#queue = result.catch(() => {});
    return result;
  }

  async #upsertOnce(registration: Registration, adopt: AdoptOptions) {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const outcome = await this.#tryUpsert(registration, adopt);
      if (outcome === null) continue;
      const { instance, previous, replaced } = outcome;
      try {
        await this.#emit({ type: "upsert", instance, previous, replaced });
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

  async #tryUpsert(registration: Registration, adopt: AdoptOptions) {
    const { uuid, name, mac } = registration;
    const [existingEntry, nameEntry, macEntry] = await this.kv.getMany<
      [Instance, string, string]
    >([["instances", uuid], ["by_name", name], ["by_mac", mac]]);
    const existing = existingEntry.value;

    // A different domain with the same name is a redefinition of that host:
    // the new domain replaces the old record and inherits its address.
    let replaced: Instance | null = null;
    let replacedEntry: Deno.KvEntryMaybe<Instance> | null = null;
    if (nameEntry.value !== null && nameEntry.value !== uuid) {
      replacedEntry = await this.kv.get<Instance>(["instances", nameEntry.value]);
      replaced = replacedEntry.value;
    }
    if (macEntry.value !== null && macEntry.value !== uuid && macEntry.value !== replaced?.uuid) {
      const holder = await this.kv.get<Instance>(["instances", macEntry.value]);
      throw new AddressConflictError(
        `MAC ${mac} already belongs to instance "${holder.value?.name ?? macEntry.value}"`,
      );
    }

    const keep = [existing?.ipv4, replaced?.ipv4].find((address) => {
      const value = address ? parseIpv4(address) : null;
      return value !== null && poolContains(this.pool, value);
    });
    let address = keep ? parseIpv4(keep)! : null;
    let addressEntry: Deno.KvEntryMaybe<string> | null = null;
    const allocating = address === null;
    if (address === null && adopt.ipv4 !== undefined) {
      address = await this.#claimAddress(adopt.ipv4, uuid);
      addressEntry = await this.kv.get<string>(["by_ipv4", address]);
    } else if (address === null) {
      const free = await this.#findFreeAddress();
      address = free.address;
      addressEntry = free.entry;
    }

    // Kept once set: an imported md_server instance keeps its old id.
    const instanceId = existing?.instanceId ?? adopt.instanceId ?? instanceIdFromUuid(uuid);
    const idEntry = await this.kv.get<string>(["by_instance_id", instanceId]);
    if (idEntry.value !== null && idEntry.value !== uuid && idEntry.value !== replaced?.uuid) {
      // Never take over another domain's id (its index would point here, and
      // DELETE by id would remove the wrong instance).
      const holder = await this.kv.get<Instance>(["instances", idEntry.value]);
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
      state: "registered",
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      stoppedAt: null,
      ...(registration.configDrive ? { configDrive: true } : {}),
      // Set by the operator, not by the domain XML: an upload keeps it.
      ...(existing?.password ? { password: existing.password } : {}),
    };

    const op = new UndoableAtomic(this.kv)
      .check(existingEntry)
      .check(nameEntry)
      .check(macEntry)
      .check(idEntry);
    if (addressEntry) op.check(addressEntry);
    if (replacedEntry && replaced) {
      op.check(replacedEntry).delete(["instances", replaced.uuid])
        .delete(["by_instance_id", replaced.instanceId]);
      if (replaced.mac !== mac) op.delete(["by_mac", replaced.mac]);
      const replacedAddress = parseIpv4(replaced.ipv4);
      if (replacedAddress !== null && replacedAddress !== address) {
        op.delete(["by_ipv4", replacedAddress]).sum(["ipam", "allocated"], MINUS_ONE);
      }
    }
    if (existing) {
      if (existing.name !== name) op.delete(["by_name", existing.name]);
      if (existing.mac !== mac) op.delete(["by_mac", existing.mac]);
      const oldAddress = parseIpv4(existing.ipv4);
      if (oldAddress !== null && oldAddress !== address) {
        op.delete(["by_ipv4", oldAddress]).sum(["ipam", "allocated"], MINUS_ONE);
      }
    }
    op.set(["instances", uuid], instance)
      .set(["by_name", name], uuid)
      .set(["by_mac", mac], uuid)
      .set(["by_ipv4", address], uuid)
      .set(["by_instance_id", instance.instanceId], uuid);
    if (allocating) {
      op.set(["ipam", "cursor"], address).sum(["ipam", "allocated"], ONE);
    }
    // KV refuses a value over 64 KiB: the domain brought too much metadata.
    if (serialize(instance).byteLength > MAX_VALUE_BYTES) {
      throw new RecordTooLargeError(
        `cannot store "${name}": its record is over the store's 64 KiB limit; keep its mdserver metadata and tags smaller`,
      );
    }
    if (!await this.#commit(op)) return null;
    this.#forget(existing?.ipv4, replaced?.ipv4, instance.ipv4);
    return { instance, previous: existing, replaced, op };
  }

  /**
   * Undoes a committed upsert and tells the listeners what holds again, so
   * that they put back what they had already changed. Their failures here
   * are theirs to log: the caller reports the first one.
   */
  async #takeBack(op: UndoableAtomic, instance: Instance, previous: Instance | null, replaced: Instance | null) {
    if (!await op.undo()) return;
    this.#forget(instance.ipv4, previous?.ipv4, replaced?.ipv4);
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

  async #claimAddress(text: string, uuid: string): Promise<number> {
    const address = parseIpv4(text);
    if (address === null || !poolContains(this.pool, address)) {
      throw new AddressOutsidePoolError(`address ${text} is not in the pool`);
    }
    const holder = (await this.kv.get<string>(["by_ipv4", address])).value;
    if (holder !== null && holder !== uuid) {
      throw new AddressConflictError(`address ${text} already belongs to another instance`);
    }
    return address;
  }

  async #findFreeAddress(): Promise<{ address: number; entry: Deno.KvEntryMaybe<string> }> {
    const size = poolSize(this.pool);
    const allocated = await this.kv.get<Deno.KvU64>(["ipam", "allocated"]);
    if (size === 0 || (allocated.value && allocated.value.value >= BigInt(size))) {
      throw new PoolFullError(`the address pool is full (${size} addresses)`);
    }
    const cursor = (await this.kv.get<number>(["ipam", "cursor"])).value;
    let candidate = nextPoolAddress(this.pool, cursor ?? this.pool.first - 1)!;
    let checked = 0;
    // Walk the allocated addresses in order from the candidate: the first gap
    // is free. With the cursor this is one short listing per upload.
    while (checked <= size) {
      const start = candidate;
      let wrapped = false;
      for await (
        const entry of this.kv.list<string>({
          start: ["by_ipv4", start],
          end: ["by_ipv4", this.pool.last + 1],
        }, { batchSize: 64 })
      ) {
        const taken = entry.key[1] as number;
        if (taken > candidate) break;
        if (taken === candidate) {
          const next = nextPoolAddress(this.pool, candidate)!;
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
        const entry = await this.kv.get<string>(["by_ipv4", candidate]);
        if (entry.value === null) return { address: candidate, entry };
        checked++;
        candidate = nextPoolAddress(this.pool, candidate)!;
      }
    }
    throw new PoolFullError(`the address pool is full (${size} addresses)`);
  }

  /**
   * The instance holding an address, by index (never a scan). Served from
   * memory when read less than the cache's time to live ago; the object is
   * frozen, since callers share it.
   */
  async getByIpv4(address: string): Promise<Instance | null> {
    const value = parseIpv4(address);
    if (value === null) return null;
    if (this.#addressCacheTtlMs <= 0) return await this.#follow(["by_ipv4", value]);
    const cached = this.#byAddress.get(value);
    if (cached !== undefined && cached.expires > performance.now()) return cached.instance;
    const generation = this.#generation;
    const instance = await this.#follow(["by_ipv4", value]);
    if (instance === null) {
      // Strangers are not cached: a guest registered by another process is known at once.
      this.#byAddress.delete(value);
      return null;
    }
    if (generation === this.#generation) {
      const now = performance.now();
      // Re-inserted, so the map stays in expiry order and the expired
      // entries (guests that have gone quiet) are dropped from its front.
      this.#byAddress.delete(value);
      this.#byAddress.set(value, { instance: freezeInstance(instance), expires: now + this.#addressCacheTtlMs });
      for (const [key, entry] of this.#byAddress) {
        if (entry.expires > now) break;
        this.#byAddress.delete(key);
      }
    }
    return instance;
  }

  /** Drops cached lookups of these addresses after a committed change. */
  #forget(...addresses: (string | null | undefined)[]): void {
    this.#generation++;
    for (const address of addresses) {
      const value = address ? parseIpv4(address) : null;
      if (value !== null) this.#byAddress.delete(value);
    }
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
    return (await this.kv.get<Instance>(["instances", uuid.toLowerCase()])).value;
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

  async #follow(key: Deno.KvKey): Promise<Instance | null> {
    // A reference longer than KV allows in a key names nothing stored.
    if (key.some((part) => typeof part === "string" && part.length > MAX_REFERENCE_LENGTH)) return null;
    const uuid = (await this.kv.get<string>(key)).value;
    if (uuid === null) return null;
    return (await this.kv.get<Instance>(["instances", uuid])).value;
  }

  /** Every instance, in UUID order. */
  async *list(): AsyncIterable<Instance> {
    for await (const entry of this.kv.list<Instance>({ prefix: ["instances"] })) {
      yield entry.value;
    }
  }

  /** How many addresses are held. */
  async allocatedCount(): Promise<number> {
    const entry = await this.kv.get<Deno.KvU64>(["ipam", "allocated"]);
    return entry.value ? Number(entry.value.value) : 0;
  }

  /** Removes an instance and releases its address; false when it was not there. */
  async delete(uuid: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const entry = await this.kv.get<Instance>(["instances", uuid]);
      const instance = entry.value;
      if (instance === null) return false;
      const address = parseIpv4(instance.ipv4);
      const op = this.kv.atomic().check(entry)
        .delete(["instances", uuid])
        .delete(["by_name", instance.name])
        .delete(["by_mac", instance.mac])
        .delete(["by_instance_id", instance.instanceId])
        .delete(["access", uuid]);
      if (address !== null) {
        op.delete(["by_ipv4", address]).sum(["ipam", "allocated"], MINUS_ONE);
      }
      if (await this.#commit(op)) {
        this.#forget(instance.ipv4);
        await this.#emit({ type: "delete", instance });
        return true;
      }
    }
    throw this.#busy(`could not delete instance ${uuid}`);
  }

  /**
   * Removes many instances in few commits (DELETE_BATCH a commit, each
   * guarded by its instance's version); the instances removed. A batch that
   * loses a race is removed one by one instead.
   */
  async deleteMany(uuids: string[]): Promise<Instance[]> {
    const removed: Instance[] = [];
    for (let start = 0; start < uuids.length; start += DELETE_BATCH) {
      const batch = uuids.slice(start, start + DELETE_BATCH);
      const entries = (await Promise.all(batch.map((uuid) => this.kv.get<Instance>(["instances", uuid]))))
        .filter((entry) => entry.value !== null);
      const op = this.kv.atomic();
      let released = 0n;
      for (const entry of entries) {
        const instance = entry.value!;
        op.check(entry)
          .delete(["instances", instance.uuid])
          .delete(["by_name", instance.name])
          .delete(["by_mac", instance.mac])
          .delete(["by_instance_id", instance.instanceId])
          .delete(["access", instance.uuid]);
        const address = parseIpv4(instance.ipv4);
        if (address !== null) {
          op.delete(["by_ipv4", address]);
          released++;
        }
      }
      if (released > 0n) op.sum(["ipam", "allocated"], (1n << 64n) - released); // sum() wraps: subtracts
      if (entries.length > 0 && await this.#commit(op)) {
        for (const entry of entries) {
          this.#forget(entry.value!.ipv4);
          removed.push(entry.value!);
          await this.#emit({ type: "delete", instance: entry.value! });
        }
        continue;
      }
      for (const entry of entries) if (await this.delete(entry.value!.uuid)) removed.push(entry.value!);
    }
    return removed;
  }

  /** Marks an instance stopped (its address is kept); null when unknown. */
  setState(uuid: string, state: Instance["state"]): Promise<Instance | null> {
    return this.#update(uuid, (instance) => ({
      ...instance,
      state,
      stoppedAt: state === "stopped" ? this.#now().toISOString() : null,
    }));
  }

  /** Sets the instance's password, or with null removes it; null when the instance is unknown. */
  setPassword(uuid: string, password: InstancePassword | null): Promise<Instance | null> {
    return this.#update(uuid, (instance) => {
      const { password: _, ...rest } = instance;
      return password === null ? rest : { ...rest, password };
    });
  }

  /**
   * Forgets the clear text of the instance's password once it has been
   * delivered, and returns it: of callers racing, exactly one gets it, the
   * others null (as when there is none). With `hash`, only that password's
   * (a password set meanwhile is not the one delivered).
   */
  async takeClearPassword(uuid: string, hash?: string): Promise<string | null> {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const entry = await this.kv.get<Instance>(["instances", uuid]);
      const clear = entry.value?.password?.clear ?? null;
      if (entry.value === null || clear === null) return null;
      if (hash !== undefined && entry.value.password?.hash !== hash) return null;
      const updated = { ...entry.value, password: { ...entry.value.password!, clear: null } };
      if (await this.#commit(this.kv.atomic().check(entry).set(["instances", uuid], updated))) {
        this.#forget(updated.ipv4);
        return clear;
      }
    }
    throw this.#busy(`could not update instance ${uuid}`);
  }

  async #update(uuid: string, change: (instance: Instance) => Instance): Promise<Instance | null> {
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      const entry = await this.kv.get<Instance>(["instances", uuid]);
      if (entry.value === null) return null;
      const updated = change(entry.value);
      if (await this.#commit(this.kv.atomic().check(entry).set(["instances", uuid], updated))) {
        this.#forget(entry.value.ipv4, updated.ipv4);
        return updated;
      }
    }
    throw this.#busy(`could not update instance ${uuid}`);
  }

  /**
   * Commits; false on a failed check or a failed commit, so the caller
   * reads again and retries (at most MAX_COMMIT_ATTEMPTS times, then
   * StoreBusyError). Deno KV reports another process holding the database
   * lock (shared storage) as a TypeError, as it does every refusal, so a
   * failure is not told apart by its text: the refusals that input can cause
   * (a value or key too large) are checked before committing.
   */
  async #commit(op: Deno.AtomicOperation | UndoableAtomic): Promise<boolean> {
    try {
      const ok = (await op.commit()).ok;
      if (!ok) this.#contention?.note("a commit met a concurrent change, retrying");
      return ok;
    } catch (error) {
      this.#contention?.note(`a commit failed, retrying: ${(error as Error).message}`);
      // Deno KV says nothing but SQLite's text of why a commit failed: a
      // full disk is told by trying to write beside the database.
      if (this.#spaceProbeDir !== null && await folderIsFull(this.#spaceProbeDir)) {
        throw new StoreFullError({ cause: error });
      }
      this.#lastCommitError = error;
      await sleep(2 + Math.random() * 20);
      return false;
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

/** Freezes an instance and the objects in it, so a shared copy cannot be changed by one caller. */
function freezeInstance(instance: Instance): Instance {
  Object.freeze(instance.metadata);
  Object.freeze(instance.tags);
  return Object.freeze(instance);
}
