/**
 * Every instance as the backend's watch last reported it (etcd): lookups by
 * address are answered from here without a read, other hosts' changes are
 * turned into store events (remote: dnsmasq writes their records too), and
 * while the backend cannot be reached the last known state keeps being
 * served. This host's own commits are applied at once with their revision,
 * so the watch's later report of them changes nothing and an older event
 * never overwrites a newer write.
 *
 * @module
 */

import type { FollowListener, StoreChange, StoreEntry } from "./backend.ts";
import type { Instance } from "./instance.ts";
import { parseIpv4 } from "../ipam/ipv4.ts";
import type { StoreEvent } from "./store.ts";

/** What the watch-fed copy reports for /health and metrics. */
export interface MirrorStatus {
  /** Whether the watch is established now. */
  watching: boolean;
  /** Instances held. */
  instances: number;
  /** The newest revision seen. */
  revision: number;
  /** Since when the watch has been lost (ms since the epoch), or null while it is up. */
  lostSinceMs: number | null;
}

/** A key's state: the instance (null when deleted) and the revision that wrote it. */
interface Held {
  instance: Instance | null;
  revision: number;
}

/** The watch-fed copy of ["instances", uuid]. */
export class InstanceMirror implements FollowListener {
  readonly #byUuid = new Map<string, Held>();
  readonly #byAddress = new Map<number, string>();
  readonly #emit: (event: StoreEvent) => void;
  readonly #onLost: ((error: unknown) => void) | undefined;
  #snapshots = 0;
  #revision = 0;
  #lostSinceMs: number | null = null;

  /** A copy that reports other hosts' changes to `emit`. */
  constructor(emit: (event: StoreEvent) => void, onLost?: (error: unknown) => void) {
    this.#emit = emit;
    this.#onLost = onLost;
  }

  /** The instance holding an address, as last known. */
  byAddress(address: number): Instance | undefined {
    const uuid = this.#byAddress.get(address);
    return uuid === undefined ? undefined : this.#byUuid.get(uuid)?.instance ?? undefined;
  }

  /** A full listing: replaces what is held; after the first one, the differences become events. */
  snapshot(entries: StoreEntry[], version: string): void {
    const quiet = this.#snapshots++ === 0;
    const revision = Number(version);
    const seen = new Set<string>();
    for (const entry of entries) {
      const uuid = entry.key[1] as string;
      seen.add(uuid);
      this.#take(uuid, entry.value as Instance, Number(entry.version), !quiet);
    }
    for (const [uuid, held] of [...this.#byUuid]) {
      if (seen.has(uuid) || held.revision > revision) continue; // written here after the listing
      if (held.instance !== null) this.#take(uuid, null, revision, !quiet);
      this.#byUuid.delete(uuid); // gone at the listing's revision: no tombstone needed
    }
    if (revision > this.#revision) this.#revision = revision;
    this.#lostSinceMs = null;
  }

  /** One change reported by the watch. */
  change(change: StoreChange): void {
    this.#take(change.key[1] as string, change.value as Instance | null, Number(change.version), true);
  }

  /** The watch broke: the last known state keeps being served. */
  lost(error: unknown): void {
    this.#lostSinceMs ??= Date.now();
    this.#onLost?.(error);
  }

  /** A commit of this host: held at once, told to nobody (the store tells its listeners itself). */
  apply(uuid: string, instance: Instance | null, revision: number): void {
    this.#take(uuid, instance, revision, false);
  }

  /** The copy's state. */
  status(): MirrorStatus {
    let instances = 0;
    for (const held of this.#byUuid.values()) if (held.instance !== null) instances++;
    return {
      watching: this.#lostSinceMs === null,
      instances,
      revision: this.#revision,
      lostSinceMs: this.#lostSinceMs,
    };
  }

  #take(uuid: string, instance: Instance | null, revision: number, tell: boolean): void {
    const held = this.#byUuid.get(uuid);
    if (held !== undefined && revision < held.revision) return; // older than what is held
    if (revision > this.#revision) this.#revision = revision;
    const previous = held?.instance ?? null;
    if (previous !== null) {
      const address = parseIpv4(previous.ipv4);
      if (address !== null && this.#byAddress.get(address) === uuid) this.#byAddress.delete(address);
    }
    this.#byUuid.set(uuid, { instance: instance === null ? null : Object.freeze(instance), revision });
    if (instance !== null) {
      const address = parseIpv4(instance.ipv4);
      if (address !== null) this.#byAddress.set(address, uuid);
    }
    if (!tell || sameRecord(previous, instance)) return;
    if (instance !== null) this.#emit({ type: "upsert", instance, previous, replaced: null, remote: true });
    else if (previous !== null) this.#emit({ type: "delete", instance: previous, remote: true });
  }
}

function sameRecord(a: Instance | null, b: Instance | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
