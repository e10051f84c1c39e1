/**
 * Boot tracking: when an instance first and last fetched its metadata, when
 * it fetched its user-data, and when cloud-init's phone_home reported it
 * booted, with its SSH host keys. Kept under ["access", uuid], apart from the
 * instance record, so guest traffic never conflicts with uploads.
 *
 * Metadata fetches and user-data fetches are each written at most once per
 * `minIntervalMs` per instance (a cloud-init crawl is dozens of requests):
 * the first of each after a (re)start is always written, and so is every
 * phone-home. The guest's request never waits for these writes.
 *
 * @module
 */

import type { Instance } from "./instance.ts";
import type { Logger } from "./log.ts";

/** What mdserver has seen of one instance's boots. */
export interface AccessRecord {
  firstMetadataAt: string | null;
  lastMetadataAt: string | null;
  userDataAt: string | null;
  bootedAt: string | null;
  /** Host name the guest reported in phone_home. */
  bootHostname: string | null;
  /** SSH host keys from phone_home: key type (e.g. "ssh-ed25519") → "type base64". */
  hostKeys: Record<string, string>;
}

/** The boot states `ctl list` shows, in order. */
export type BootState = "registered" | "metadata fetched" | "user-data fetched" | "booted" | "stopped";

/** An empty record. */
export function emptyAccessRecord(): AccessRecord {
  return {
    firstMetadataAt: null,
    lastMetadataAt: null,
    userDataAt: null,
    bootedAt: null,
    bootHostname: null,
    hostKeys: {},
  };
}

/** The state of an instance from its record and its access record. */
export function bootState(instance: Instance, access: AccessRecord | null): BootState {
  if (instance.state === "stopped") return "stopped";
  if (!access) return "registered";
  if (access.bootedAt) return "booted";
  if (access.userDataAt) return "user-data fetched";
  if (access.firstMetadataAt) return "metadata fetched";
  return "registered";
}

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

/** Records accesses in KV; writes for guest traffic are throttled and never awaited by requests. */
export class AccessRecorder {
  readonly #kv: Deno.Kv;
  readonly #now: () => Date;
  readonly #log: Logger;
  readonly #minIntervalMs: number;
  readonly #lastWrite = new Map<string, number>();
  readonly #lastUserDataWrite = new Map<string, number>();
  readonly #pending = new Set<Promise<void>>();

  constructor(kv: Deno.Kv, options: { now?: () => Date; log: Logger; minIntervalMs?: number }) {
    this.#kv = kv;
    this.#now = options.now ?? (() => new Date());
    this.#log = options.log;
    this.#minIntervalMs = options.minIntervalMs ?? 10_000;
  }

  /** Notes a metadata fetch (EC2, OpenStack or NoCloud). */
  noteMetadata(uuid: string): void {
    const now = this.#now();
    const last = this.#lastWrite.get(uuid);
    if (last !== undefined && now.getTime() - last < this.#minIntervalMs) return;
    this.#lastWrite.set(uuid, now.getTime());
    this.#background(uuid, (record) => ({
      ...record,
      firstMetadataAt: record.firstMetadataAt ?? now.toISOString(),
      lastMetadataAt: now.toISOString(),
    }));
  }

  /** Notes a user-data fetch. */
  noteUserData(uuid: string): void {
    const now = this.#now();
    const last = this.#lastUserDataWrite.get(uuid);
    if (last !== undefined && now.getTime() - last < this.#minIntervalMs) return;
    this.#lastUserDataWrite.set(uuid, now.getTime());
    this.#lastWrite.set(uuid, now.getTime());
    const at = now.toISOString();
    this.#background(uuid, (record) => ({
      ...record,
      firstMetadataAt: record.firstMetadataAt ?? at,
      lastMetadataAt: at,
      userDataAt: at,
    }));
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
    this.#lastWrite.delete(uuid);
    this.#lastUserDataWrite.delete(uuid);
    await this.flush();
    await this.#update(uuid, (record) => ({
      ...record,
      firstMetadataAt: null,
      lastMetadataAt: null,
      userDataAt: null,
      bootedAt: null,
    }));
  }

  /** The record of an instance, or null when nothing was seen. */
  async get(uuid: string): Promise<AccessRecord | null> {
    return (await this.#kv.get<AccessRecord>(["access", uuid])).value;
  }

  /** Waits for background writes (tests and shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  #background(uuid: string, change: (record: AccessRecord) => AccessRecord) {
    const write = this.#update(uuid, change).then(
      () => {},
      (error) => this.#log.warning(`access record for ${uuid} not written: ${(error as Error).message}`),
    );
    this.#pending.add(write);
    write.finally(() => this.#pending.delete(write));
  }

  async #update(uuid: string, change: (record: AccessRecord) => AccessRecord): Promise<AccessRecord> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const entry = await this.#kv.get<AccessRecord>(["access", uuid]);
      const instance = await this.#kv.get(["instances", uuid]);
      if (instance.value === null) throw new Error("instance no longer exists");
      const updated = change(entry.value ?? emptyAccessRecord());
      const result = await this.#kv.atomic().check(entry).check(instance).set(["access", uuid], updated).commit();
      if (result.ok) return updated;
    }
    throw new Error("the store stayed busy");
  }
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
