/**
 * Instances read by address, kept in memory for a time to live: a booting
 * guest's dozens of requests cost one store read or a few instead of two
 * each. The store drops entries its own commits touch, and (on a backend
 * whose watch sees other hosts) those other hosts' commits touch; a
 * generation counter keeps a read that overlapped a change from being cached.
 *
 * @module
 */

import type { Instance } from "./instance.ts";

/**
 * Default time to live of the address cache. Long enough that a booting
 * guest's dozens of requests cost one store read or a few instead of two
 * each; short enough that a change written by another process (md_server
 * import, a second mdserver on shared storage) reaches guests within seconds.
 */
export const ADDRESS_CACHE_TTL_MS = 10_000;

/** An instance read by address, and until when it is trusted (performance.now()). */
interface CachedGuest {
  instance: Instance;
  expires: number;
}

/** The cache of instances by address (as a number). */
export class AddressCache {
  readonly #ttlMs: number;
  readonly #entries = new Map<number, CachedGuest>();
  /** Bumped by every committed change, so a read that overlapped one is not cached. */
  #generation = 0;

  /** A cache trusting what it holds for `ttlMs` (0: nothing is cached). */
  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  /** Whether anything is cached at all. */
  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  /** The generation to pass to `put` after reading. */
  get generation(): number {
    return this.#generation;
  }

  /** The cached instance, while it is trusted. */
  get(address: number): Instance | undefined {
    const cached = this.#entries.get(address);
    return cached !== undefined && cached.expires > performance.now() ? cached.instance : undefined;
  }

  /**
   * Caches what was read at `generation` (frozen, since callers share it),
   * unless a change was committed since; returns the instance.
   */
  put(address: number, instance: Instance, generation: number): Instance {
    if (generation !== this.#generation) return instance;
    const now = performance.now();
    // Re-inserted, so the map stays in expiry order and the expired
    // entries (guests that have gone quiet) are dropped from its front.
    this.#entries.delete(address);
    this.#entries.set(address, { instance: freezeInstance(instance), expires: now + this.#ttlMs });
    for (const [key, entry] of this.#entries) {
      if (entry.expires > now) break;
      this.#entries.delete(key);
    }
    return instance;
  }

  /** Caches a copy of what this process has just committed (the copy is frozen, not the caller's object). */
  keepWritten(address: number, instance: Instance): void {
    if (this.enabled) this.put(address, structuredClone(instance), this.#generation);
  }

  /** Drops one address (a stranger is never cached). */
  drop(address: number): void {
    this.#entries.delete(address);
  }

  /** Drops these addresses after a committed change, and starts a new generation. */
  forget(addresses: Iterable<number>): void {
    this.#generation++;
    for (const address of addresses) this.#entries.delete(address);
  }
}

/** Freezes an instance and the objects in it, so a shared copy cannot be changed by one caller. */
function freezeInstance(instance: Instance): Instance {
  Object.freeze(instance.metadata);
  Object.freeze(instance.tags);
  return Object.freeze(instance);
}
