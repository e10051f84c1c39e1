/**
 * Instances by boot state, counted as things change so a /metrics scrape
 * costs the same with 10 or 50,000 instances: store events (upload, delete,
 * stopped) and boot-tracking writes update one entry each; the counts are
 * filled from KV once at start, behind the listeners.
 *
 * @module
 */

import { type AccessRecord, type BootState, bootState, type Instance, type InstanceStore } from "../store/mod.ts";

/** Every boot state, as the metric's label values (snake_case). */
export const BOOT_STATES: readonly BootState[] = [
  "registered",
  "metadata fetched",
  "user-data fetched",
  "booted",
  "stopped",
];

/** A boot state as a label value: `user-data fetched` → `user_data_fetched`. */
export function stateLabel(state: BootState): string {
  return state.replace(/[\s-]+/g, "_");
}

/** Counts of instances by boot state, kept current. */
export class StateTally {
  readonly #states = new Map<string, { stopped: boolean; progress: BootState }>();
  readonly #counts = new Map<BootState, number>(BOOT_STATES.map((state) => [state, 0]));

  /** Instances counted. */
  get size(): number {
    return this.#states.size;
  }

  /** The counts, every state present. */
  counts(): [BootState, number][] {
    return [...this.#counts];
  }

  /** An instance was written (upload, stopped): its record state and, when known, its boot progress. */
  setInstance(instance: Pick<Instance, "uuid" | "state">, access?: AccessRecord | null): void {
    const before = this.#states.get(instance.uuid);
    const progress = access !== undefined
      ? bootState({ state: "registered" }, access)
      : before?.progress ?? "registered";
    this.#set(instance.uuid, { stopped: instance.state === "stopped", progress });
  }

  /** Boot tracking wrote an instance's record. */
  setAccess(uuid: string, access: AccessRecord | null): void {
    const before = this.#states.get(uuid);
    if (before === undefined) return; // not (or no longer) an instance
    this.#set(uuid, { stopped: before.stopped, progress: bootState({ state: "registered" }, access) });
  }

  /** An instance was deleted. */
  remove(uuid: string): void {
    const before = this.#states.get(uuid);
    if (before === undefined) return;
    this.#count(before, -1);
    this.#states.delete(uuid);
  }

  /** Counts every stored instance (at start); changes meanwhile are kept. */
  async fill(store: InstanceStore, readAccess: () => Promise<Map<string, AccessRecord>>): Promise<number> {
    const records = await readAccess();
    let seen = 0;
    for await (const instance of store.list()) {
      seen++;
      if (this.#states.has(instance.uuid)) continue; // changed since start: already current
      this.setInstance(instance, records.get(instance.uuid) ?? null);
    }
    return seen;
  }

  #set(uuid: string, next: { stopped: boolean; progress: BootState }): void {
    const before = this.#states.get(uuid);
    if (before) this.#count(before, -1);
    this.#states.set(uuid, next);
    this.#count(next, 1);
  }

  #count(entry: { stopped: boolean; progress: BootState }, by: number): void {
    const state = entry.stopped ? "stopped" : entry.progress;
    this.#counts.set(state, (this.#counts.get(state) ?? 0) + by);
  }
}
