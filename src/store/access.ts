/**
 * Boot tracking: when an instance first and last fetched its metadata, when
 * it fetched its user-data, and when cloud-init's phone_home reported it
 * booted, with its SSH host keys. Kept under ["access", uuid], apart from the
 * instance record, so guest traffic never conflicts with uploads.
 *
 * Metadata fetches and user-data fetches are each noted at most once per
 * `minIntervalMs` per instance (a cloud-init crawl is dozens of requests):
 * the first of each after a (re)start is always noted, and every phone-home
 * is written at once. Notes are written behind, in batches (AccessRecorder);
 * the guest's request never waits for them.
 *
 * @module
 */

import { type KeyValueBackend, type StoreEntry, type StoreKey } from "./backend.ts";
import { StoreBusyError } from "./errors.ts";
import { asBackend } from "./kv_backend.ts";
import { type AccessRecord, emptyAccessRecord } from "./boot_state.ts";
import type { EventCounter } from "../log/burst_log.ts";
import type { Logger } from "../log/log.ts";

const PHONE_HOME_KEYS: Record<string, string> = {
  pub_key_rsa: "ssh-rsa",
  pub_key_ecdsa: "ecdsa-sha2-nistp256",
  pub_key_ed25519: "ssh-ed25519",
  pub_key_dsa: "ssh-dss",
};

/** The host keys in a phone_home form: only well-formed "type base64 [comment]" values. */
export function hostKeysFromPhoneHome(fields: URLSearchParams): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const field of Object.keys(PHONE_HOME_KEYS)) {
    const value = fields.get(field)?.trim();
    if (!value) continue;
    const match = /^(ssh-[a-z0-9-]+|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) ([A-Za-z0-9+/]+=*)( .*)?$/.exec(value);
    if (!match) continue;
    keys[match[1]!] = `${match[1]} ${match[2]}`;
  }
  return keys;
}

/** Notes of guest traffic not yet written: merged per instance until the next batch. */
interface PendingNote {
  /** The first fetch since the last batch (becomes firstMetadataAt if the record has none). */
  firstAt: string;
  lastAt: string;
  userDataAt: string | null;
}

/** What an AccessRecorder needs besides its backend. */
export interface AccessRecorderOptions {
  /** Where failed writes are reported. */
  log: Logger;
  /** The clock; default the wall clock. */
  now?: () => Date;
  /** Where commit conflicts are counted (one log line per burst). */
  contention?: EventCounter;
  /** Notes of one kind for one instance closer together than this (ms) are written once. */
  minIntervalMs?: number;
  /** How long notes are gathered before a batch is written (ms). */
  batchDelayMs?: number;
  /** Told of every record written (what the metrics count by state). */
  onWrite?: (uuid: string, record: AccessRecord) => void;
}

/**
 * Records accesses in the store's backend. Guest traffic (metadata and user-data fetches) is
 * throttled per instance, never awaited by a request, and written behind in
 * batches: notes gathered for `batchDelayMs` become one read and one commit
 * for up to 50 instances (fewer where the backend takes fewer operations), so a boot storm costs a few KV operations per
 * hundred boots instead of several per boot. Reads (`get`) and `flush`
 * write what is gathered first, so nothing noted is ever hidden from them.
 * Phone-home and boot resets are written at once.
 */
export class AccessRecorder {
  readonly #backend: KeyValueBackend;
  readonly #now: () => Date;
  readonly #nowMs: () => number;
  readonly #log: Logger;
  readonly #minIntervalMs: number;
  readonly #contention: EventCounter | null;
  readonly #batchDelayMs: number;
  readonly #onWrite: (uuid: string, record: AccessRecord) => void;
  readonly #lastWrite = new Map<string, number>();
  readonly #lastUserDataWrite = new Map<string, number>();
  #queued = new Map<string, PendingNote>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** The batch being written, if any: batches never overlap. */
  #writing: Promise<void> = Promise.resolve();

  /** A recorder writing to a backend (or a Deno KV database). */
  constructor(backend: KeyValueBackend | Deno.Kv, options: AccessRecorderOptions) {
    this.#backend = asBackend(backend);
    this.#now = options.now ?? (() => new Date());
    this.#nowMs = options.now ? () => this.#now().getTime() : Date.now;
    this.#log = options.log;
    this.#minIntervalMs = options.minIntervalMs ?? 10_000;
    this.#contention = options.contention ?? null;
    this.#batchDelayMs = options.batchDelayMs ?? 1_000;
    this.#onWrite = options.onWrite ?? (() => {});
  }

  /** Notes a metadata fetch (EC2, OpenStack or NoCloud). */
  noteMetadata(uuid: string): void {
    const last = this.#lastWrite.get(uuid);
    // Most fetches of a crawl fall within the interval: they cost a lookup and a clock read.
    if (last !== undefined && this.#nowMs() - last < this.#minIntervalMs) return;
    const now = this.#now();
    this.#lastWrite.set(uuid, now.getTime());
    this.#queue(uuid, now.toISOString(), false);
  }

  /** Notes a user-data fetch. */
  noteUserData(uuid: string): void {
    const now = this.#now();
    const last = this.#lastUserDataWrite.get(uuid);
    if (last !== undefined && now.getTime() - last < this.#minIntervalMs) return;
    this.#lastUserDataWrite.set(uuid, now.getTime());
    this.#lastWrite.set(uuid, now.getTime());
    this.#queue(uuid, now.toISOString(), true);
  }

  /** Records cloud-init's phone_home: booted now, with these host keys. */
  async recordBoot(uuid: string, hostname: string | null, hostKeys: Record<string, string>): Promise<AccessRecord> {
    const at = this.#now().toISOString();
    return await this.#update(uuid, (record) => ({
      ...record,
      bootedAt: at,
      bootHostname: hostname,
      hostKeys: Object.keys(hostKeys).length > 0 ? hostKeys : record.hostKeys,
    }));
  }

  /** Clears boot progress when an instance starts again, keeping its host keys. */
  async resetBoot(uuid: string): Promise<void> {
    // Notes from before the restart are cleared by it anyway.
    this.#queued.delete(uuid);
    this.#lastWrite.delete(uuid);
    this.#lastUserDataWrite.delete(uuid);
    await this.#writing;
    // Nothing to clear (a first start, or one before any fetch): the record is left as it is, unwritten.
    await this.#update(uuid, (record) => hasBootProgress(record) ? { ...record, ...NO_BOOT_PROGRESS } : record);
  }

  /** The record of an instance, or null when nothing was seen. */
  async get(uuid: string): Promise<AccessRecord | null> {
    if (this.#queued.has(uuid)) await this.flush();
    const [entry] = await this.#backend.getMany([["access", uuid]]);
    return entry!.value as AccessRecord | null;
  }

  /** The records of these instances, in their order (null where none), read ten at a time. */
  async getMany(uuids: string[]): Promise<(AccessRecord | null)[]> {
    if (uuids.some((uuid) => this.#queued.has(uuid))) await this.flush();
    const out: (AccessRecord | null)[] = [];
    for (let i = 0; i < uuids.length; i += 10) {
      const entries = await this.#backend.getMany(uuids.slice(i, i + 10).map((uuid) => ["access", uuid]));
      for (const entry of entries) out.push(entry.value as AccessRecord | null);
    }
    return out;
  }

  /** Every record, by UUID, in one scan (listing all instances). */
  async all(): Promise<Map<string, AccessRecord>> {
    await this.flush();
    const records = new Map<string, AccessRecord>();
    for await (const entry of this.#backend.list({ prefix: ["access"] })) {
      records.set(entry.key[1] as string, entry.value as AccessRecord);
    }
    return records;
  }

  /** Writes every gathered note now and waits for it (reads, tests and shutdown). */
  async flush(): Promise<void> {
    this.#startBatch();
    await this.#writing;
  }

  #queue(uuid: string, at: string, userData: boolean): void {
    const pending = this.#queued.get(uuid);
    if (pending) {
      pending.lastAt = at;
      if (userData) pending.userDataAt = at;
    } else {
      this.#queued.set(uuid, { firstAt: at, lastAt: at, userDataAt: userData ? at : null });
    }
    this.#timer ??= setTimeout(() => this.#startBatch(), this.#batchDelayMs);
  }

  /** Takes everything gathered so far and writes it after the batch before it. */
  #startBatch(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#queued.size === 0) return;
    const batch = this.#queued;
    this.#queued = new Map();
    this.#writing = this.#writing.then(() => this.#writeBatch(batch));
  }

  async #writeBatch(batch: Map<string, PendingNote>): Promise<void> {
    const uuids = [...batch.keys()];
    // Two checks per instance; at most 50 instances per commit.
    const perCommit = Math.min(50, Math.floor(this.#backend.maxOperations / 2));
    for (let start = 0; start < uuids.length; start += perCommit) {
      const chunk = uuids.slice(start, start + perCommit);
      try {
        await this.#writeChunk(chunk, batch);
      } catch (error) {
        this.#log.warning(`access records of ${chunk.length} instances not written: ${(error as Error).message}`);
      }
    }
  }

  /**
   * One commit for a chunk of instances, each checked against the
   * record and instance it was read with. When another writer got in between
   * (a phone-home, an upload, another process), each instance is written on
   * its own instead.
   */
  async #writeChunk(uuids: string[], batch: Map<string, PendingNote>): Promise<void> {
    const entries = await this.#backend.getMany(uuids.flatMap(recordKeys));
    const checks: StoreEntry[] = [];
    const writes: { type: "set"; key: StoreKey; value: AccessRecord }[] = [];
    const written: [string, AccessRecord][] = [];
    uuids.forEach((uuid, index) => {
      const access = entries[2 * index] as StoreEntry<AccessRecord>;
      const instance = entries[2 * index + 1]!;
      if (instance.value === null) return; // deleted since: nothing to record
      const note = batch.get(uuid)!;
      const record = applyNote(access.value, note);
      written.push([uuid, record]);
      checks.push(access, instance);
      writes.push({ type: "set", key: ["access", uuid], value: record });
    });
    if (writes.length === 0) return;
    if ((await this.#backend.commit(checks, writes)).ok) {
      for (const [uuid, record] of written) this.#onWrite(uuid, record);
      return;
    }
    for (const uuid of uuids) {
      const note = batch.get(uuid)!;
      try {
        await this.#update(uuid, (record) => applyNote(record, note));
      } catch (error) {
        if (error instanceof InstanceGoneError) continue; // deleted since: nothing to record
        this.#log.warning(`access record for ${uuid} not written: ${(error as Error).message}`);
      }
    }
  }

  async #update(uuid: string, change: (record: AccessRecord) => AccessRecord): Promise<AccessRecord> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const [entry, instance] = await this.#backend.getMany(recordKeys(uuid)) as [StoreEntry<AccessRecord>, StoreEntry];
      if (instance.value === null) throw new InstanceGoneError();
      const current = entry.value ?? emptyAccessRecord();
      const updated = change(current);
      // The change left the record as it is: no write, as if it had been made.
      if (updated === current) return updated;
      const result = await this.#backend.commit([entry, instance], [{
        type: "set",
        key: ["access", uuid],
        value: updated,
      }]);
      if (result.ok) {
        this.#onWrite(uuid, updated);
        return updated;
      }
      this.#contention?.note(`the access record of ${uuid} met a concurrent change, retrying`);
    }
    throw new StoreBusyError(`access record for ${uuid}: the store stayed busy`);
  }
}

/** The instance was deleted: its access record is not written. */
class InstanceGoneError extends Error {
  constructor() {
    super("instance no longer exists");
    this.name = "InstanceGoneError";
  }
}

/** A record's boot progress, cleared: what a new start begins from. */
const NO_BOOT_PROGRESS = { firstMetadataAt: null, lastMetadataAt: null, userDataAt: null, bootedAt: null } as const;

/** Whether any of a record's boot progress is set. */
function hasBootProgress(record: AccessRecord): boolean {
  return (Object.keys(NO_BOOT_PROGRESS) as (keyof typeof NO_BOOT_PROGRESS)[]).some((key) => record[key] !== null);
}

/** The keys every write checks: the access record and the instance it belongs to. */
function recordKeys(uuid: string): [StoreKey, StoreKey] {
  return [["access", uuid], ["instances", uuid]];
}

/** A record with a batch's note applied. */
function applyNote(record: AccessRecord | null, note: PendingNote): AccessRecord {
  const base = record ?? emptyAccessRecord();
  return {
    ...base,
    firstMetadataAt: base.firstMetadataAt ?? note.firstAt,
    lastMetadataAt: note.lastAt,
    userDataAt: note.userDataAt ?? base.userDataAt,
  };
}

/** An ssh known_hosts file: each instance's names and address with its host keys. */
export function knownHostsLines(
  entries: { names: string[]; ipv4: string; hostKeys: Record<string, string> }[],
): string[] {
  const lines: string[] = [];
  for (const entry of entries) {
    const hosts = [...new Set([...entry.names, entry.ipv4])].join(",");
    for (const key of Object.values(entry.hostKeys).sort()) lines.push(`${hosts} ${key}`);
  }
  return lines;
}
