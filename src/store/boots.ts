/**
 * The boots of every instance in KV: under ["boots", uuid] the current boot
 * and the last few before it (newest first, `history` in all), moved by
 * boot_machine.ts. Writes for one instance are applied one at a time in
 * this process and checked against the stored value and the instance
 * record (another process, a deletion), so no event is lost to a race and
 * none is kept for a deleted instance. Fetches are noted at most once per
 * boot (a cloud-init crawl is dozens of requests), from what this process
 * already knows.
 *
 * @module
 */

import {
  applyEvent,
  type Boot,
  type BootCause,
  eventBelongs,
  isFinal,
  noteDropped,
  noteFetch,
  openBoot,
  type ReportingEvent,
} from "./boot_machine.ts";
import { getOne, type KeyValueBackend, type StoreCheck, type StoreEntry, type StoreMutation } from "./backend.ts";
import { StoreBusyError } from "./errors.ts";
import type { EventCounter } from "../log/burst_log.ts";
import type { Logger } from "../log/log.ts";

/** What became of one event. */
export type EventFate = "taken" | "dropped" | "stale";

/** Told of every change of a boot: the instance, the boot after it and before it (null when opened). */
export type BootListener = (uuid: string, boot: Boot, before: Boot | null) => void;

/** What a BootJournal needs besides KV. */
export interface BootJournalOptions {
  /** Where failed writes are reported. */
  log: Logger;
  /** Boots kept per instance, the current one included. */
  history: number;
  /** Events taken per boot; more are counted as dropped. */
  maxEventsPerBoot: number;
  /** The clock; default the wall clock. */
  now?: () => Date;
  /** Where commit conflicts are counted. */
  contention?: EventCounter;
}

/** How long fetch notes are gathered before they are written (ms). */
const FETCH_BATCH_DELAY_MS = 1000;
/** Instances per commit of fetch notes (two checks each; a commit takes 100). */
const FETCH_CHUNK = 50;

/** An instance's first fetches not yet written. */
interface FetchNote {
  metadataAt: string | null;
  userDataAt: string | null;
}

/** The boots with fetch notes applied to the current one (a first boot opened if there is none); null: no change. */
function withFetches(boots: Boot[], note: FetchNote): Boot[] | null {
  const first = boots[0] ?? openBoot(1, "first event", note.metadataAt ?? note.userDataAt!);
  let next = first;
  if (note.metadataAt !== null) next = noteFetch(next, "metadata", note.metadataAt);
  if (note.userDataAt !== null) next = noteFetch(next, "user-data", note.userDataAt);
  return next === first && boots[0] ? null : [next, ...boots.slice(1)];
}

/** The stored value: newest boot first. */
interface BootsValue {
  boots: Boot[];
}

/** Boots of every instance. */
export class BootJournal {
  readonly #backend: KeyValueBackend;
  readonly #options: BootJournalOptions;
  readonly #now: () => Date;
  readonly #listeners = new Set<BootListener>();
  /** Per instance: the write in progress (writes of one instance never overlap). */
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Per instance: what this process knows the current boot has noted (seq, and fetches). */
  readonly #fetched = new Map<string, { seq: number; metadata: boolean; userData: boolean }>();
  /** Per instance: events refused by the rate limit, not yet written. */
  readonly #drops = new Map<string, number>();
  #dropTimer: ReturnType<typeof setTimeout> | null = null;
  #version = 0;
  /** Fetch notes not yet written, and the batch being written. */
  readonly #pendingFetches = new Map<string, FetchNote>();
  #fetchTimer: ReturnType<typeof setTimeout> | null = null;
  #fetchWriting: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #closers = new Set<() => void>();

  /** A journal in the store's backend (Deno KV or etcd). */
  constructor(backend: KeyValueBackend, options: BootJournalOptions) {
    this.#backend = backend;
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Counts the changes this process made: what long-polls wait on. */
  get version(): number {
    return this.#version;
  }

  /**
   * Resolves once the version is past `after` (at once if it is), after
   * `timeoutMs`, or when the journal is closed, whichever comes first.
   */
  changed(after: number, timeoutMs: number): Promise<void> {
    if (this.#version > after || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        this.#closers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      const unsubscribe = this.subscribe(() => {
        if (this.#version > after) done();
      });
      this.#closers.add(done);
    });
  }

  /** Ends every wait and stream (the service is stopping). */
  close(): void {
    this.#closed = true;
    for (const close of [...this.#closers]) close();
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Calls `close` when the journal closes (at once if it has); returns the unsubscribe function. */
  onClose(close: () => void): () => void {
    if (this.#closed) {
      close();
      return () => {};
    }
    this.#closers.add(close);
    return () => this.#closers.delete(close);
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: BootListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Opens a new boot: the instance starts (the hook's upload at `prepare begin`). */
  async start(uuid: string, cause: BootCause = "start"): Promise<Boot | null> {
    this.#pendingFetches.delete(uuid); // fetches of the boot before
    return await this.#update(uuid, (boots) => {
      const at = this.#now().toISOString();
      return [openBoot((boots[0]?.seq ?? 0) + 1, cause, at), ...boots];
    });
  }

  /** Notes a metadata or user-data fetch; never awaited by the guest's request. */
  noteFetch(uuid: string, kind: "metadata" | "user-data"): void {
    const known = this.#fetched.get(uuid);
    if (known && (kind === "metadata" ? known.metadata : known.userData)) return;
    // Marked at once: the rest of a crawl (dozens of requests in flight together) costs nothing.
    const marked = known ?? { seq: -1, metadata: false, userData: false };
    if (kind === "metadata") marked.metadata = true;
    else marked.metadata = marked.userData = true;
    this.#fetched.set(uuid, marked);
    // Written behind, many instances a commit (a boot storm is a thousand first fetches at once).
    const at = this.#now().toISOString();
    const pending = this.#pendingFetches.get(uuid) ?? { metadataAt: null, userDataAt: null };
    if (kind === "metadata") pending.metadataAt ??= at;
    else pending.userDataAt ??= at;
    this.#pendingFetches.set(uuid, pending);
    if (this.#fetchTimer === null) {
      this.#fetchTimer = setTimeout(() => this.#writeFetches(), FETCH_BATCH_DELAY_MS);
      Deno.unrefTimer(this.#fetchTimer);
    }
  }

  /** Writes the gathered fetch notes: up to FETCH_CHUNK instances a commit, each on its own after a conflict. */
  #writeFetches(): Promise<void> {
    if (this.#fetchTimer !== null) clearTimeout(this.#fetchTimer);
    this.#fetchTimer = null;
    const batch = [...this.#pendingFetches];
    this.#pendingFetches.clear();
    this.#fetchWriting = this.#fetchWriting.then(async () => {
      for (let start = 0; start < batch.length; start += FETCH_CHUNK) {
        const chunk = batch.slice(start, start + FETCH_CHUNK);
        try {
          if (!(await this.#commitFetches(chunk))) {
            for (const [uuid, note] of chunk) await this.#update(uuid, (boots) => withFetches(boots, note));
          }
        } catch (error) {
          this.#options.log.warning(
            `boots of ${chunk.length} instances: fetches not noted: ${(error as Error).message}`,
          );
        }
      }
    });
    return this.#fetchWriting;
  }

  /** One commit for a chunk of fetch notes; false when another write got in between. */
  async #commitFetches(chunk: [string, FetchNote][]): Promise<boolean> {
    const entries: StoreEntry[] = [];
    for (let start = 0; start < chunk.length; start += 5) {
      entries.push(
        ...await this.#backend.getMany(
          chunk.slice(start, start + 5).flatMap(([uuid]) => [["boots", uuid], ["instances", uuid]]),
        ),
      );
    }
    const checks: StoreCheck[] = [];
    const writes: StoreMutation[] = [];
    const changes: [string, Boot, Boot | null][] = [];
    chunk.forEach(([uuid, note], index) => {
      const entry = entries[2 * index] as StoreEntry<BootsValue>;
      const instance = entries[2 * index + 1]!;
      if (instance.value === null) return;
      const boots = entry.value?.boots ?? [];
      const changed = withFetches(boots, note);
      if (changed === null) return;
      const kept = changed.slice(0, Math.max(1, this.#options.history));
      checks.push(entry, instance);
      writes.push({ type: "set", key: ["boots", uuid], value: { boots: kept } });
      changes.push([uuid, kept[0]!, boots.find((boot) => boot.seq === kept[0]!.seq) ?? null]);
    });
    if (changes.length === 0) return true;
    if (!(await this.#commit(checks, writes))) return false;
    for (const [uuid, boot, before] of changes) this.#changed(uuid, boot, before);
    return true;
  }

  /** Applies one of cloud-init's events to the instance's current boot (or a new one, after a reboot). */
  async event(uuid: string, event: ReportingEvent): Promise<EventFate> {
    let fate: EventFate = "taken";
    // Fetches not yet written came first: they are applied before the event.
    const note = this.#pendingFetches.get(uuid);
    this.#pendingFetches.delete(uuid);
    await this.#update(uuid, (stored) => {
      const at = this.#now().toISOString();
      const boots = (note && withFetches(stored, note)) ?? stored;
      let current = boots[0];
      let rest = boots.slice(1);
      if (current === undefined) {
        current = openBoot(1, "first event", at);
      } else {
        const belongs = eventBelongs(current, event);
        if (belongs === "stale") {
          fate = "stale";
          return boots === stored ? null : boots;
        }
        if (belongs === "new") {
          rest = boots;
          current = openBoot(current.seq + 1, "guest reboot", at);
        }
      }
      if (current.events >= this.#options.maxEventsPerBoot) {
        fate = "dropped";
        return [noteDropped(current), ...rest];
      }
      fate = "taken";
      return [applyEvent(current, event, at), ...rest];
    });
    return fate;
  }

  /**
   * Counts an event refused before it was read (the rate limit) against the
   * current boot: gathered in memory and written once a second at most, so
   * a guest over its rate costs the store nothing per request.
   */
  dropped(uuid: string): void {
    this.#drops.set(uuid, (this.#drops.get(uuid) ?? 0) + 1);
    if (this.#dropTimer === null) {
      this.#dropTimer = setTimeout(() => this.#writeDrops(), 1000);
      Deno.unrefTimer(this.#dropTimer);
    }
  }

  #writeDrops(): Promise<unknown> {
    if (this.#dropTimer !== null) clearTimeout(this.#dropTimer);
    this.#dropTimer = null;
    const drops = [...this.#drops];
    this.#drops.clear();
    return Promise.all(drops.map(([uuid, count]) =>
      this.#update(uuid, (boots) => {
        const current = boots[0];
        if (current === undefined || isFinal(current.phase)) return null;
        return [noteDropped(current, count), ...boots.slice(1)];
      }).catch((error) => this.#options.log.warning(`boot of ${uuid}: drops not noted: ${(error as Error).message}`))
    ));
  }

  /** The instance's boots, newest first (empty when none was seen). */
  async get(uuid: string): Promise<Boot[]> {
    if (this.#pendingFetches.has(uuid)) await this.#writeFetches();
    return (await getOne<BootsValue>(this.#backend, ["boots", uuid])).value?.boots ?? [];
  }

  /** Every instance's boots, in one scan. */
  async all(): Promise<Map<string, Boot[]>> {
    if (this.#pendingFetches.size > 0) await this.#writeFetches();
    const found = new Map<string, Boot[]>();
    for await (const entry of this.#backend.list({ prefix: ["boots"] })) {
      found.set(entry.key[1] as string, (entry.value as BootsValue).boots);
    }
    return found;
  }

  /**
   * Forgets what is kept in memory of a deleted instance's boots. Its
   * ["boots", uuid] record goes in the store's removal commit (a gc of
   * thousands is one commit per batch, not one per instance).
   */
  forget(uuid: string): void {
    this.#fetched.delete(uuid);
    this.#pendingFetches.delete(uuid);
  }

  /** Writes what is gathered and waits for every write started so far. */
  async flush(): Promise<void> {
    await this.#writeDrops();
    await this.#writeFetches();
    await Promise.all([...this.#chains.values()].map((write) => write.catch(() => {})));
  }

  /** Runs `work` after the instance's previous write. */
  #chain<T>(uuid: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(uuid) ?? Promise.resolve();
    const run = previous.catch(() => {}).then(work);
    this.#chains.set(uuid, run);
    run.finally(() => {
      if (this.#chains.get(uuid) === run) this.#chains.delete(uuid);
    }).catch(() => {});
    return run;
  }

  /**
   * Changes the instance's boots (`change` returns null for "no change"),
   * retried on a concurrent write; nothing is written for an instance that
   * no longer exists. Returns the current boot after it.
   */
  #update(uuid: string, change: (boots: Boot[]) => Boot[] | null): Promise<Boot | null> {
    return this.#chain(uuid, async () => {
      for (let attempt = 0; attempt < 16; attempt++) {
        const [entry, instance] = await this.#backend.getMany([["boots", uuid], ["instances", uuid]]) as [
          StoreEntry<BootsValue>,
          StoreEntry,
        ];
        if (instance.value === null) return null;
        const boots = entry.value?.boots ?? [];
        const changed = change(boots);
        if (changed === null) {
          this.#remember(uuid, boots[0]);
          return boots[0] ?? null;
        }
        const kept = changed.slice(0, Math.max(1, this.#options.history));
        const committed = await this.#commit(
          [entry, instance],
          [{ type: "set", key: ["boots", uuid], value: { boots: kept } }],
        );
        if (!committed) {
          this.#options.contention?.note(`the boots of ${uuid} met a concurrent change, retrying`);
          continue;
        }
        const [current] = kept;
        this.#changed(uuid, current!, boots.find((boot) => boot.seq === current!.seq) ?? null);
        return current!;
      }
      throw new StoreBusyError(`boots of ${uuid}: the store stayed busy`);
    });
  }

  /**
   * Commits; false on a failed check or a failed commit. Deno KV reports
   * another process holding the database lock (a shared store) as a thrown
   * TypeError: that is retried too, after a short random pause.
   */
  async #commit(checks: readonly StoreCheck[], writes: readonly StoreMutation[]): Promise<boolean> {
    try {
      return (await this.#backend.commit(checks, writes)).ok;
    } catch (error) {
      this.#options.contention?.note(`a commit of boots failed, retrying: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 20));
      return false;
    }
  }

  /** A committed change: remembered, counted, told. */
  #changed(uuid: string, boot: Boot, before: Boot | null): void {
    this.#remember(uuid, boot);
    this.#version++;
    for (const listener of [...this.#listeners]) listener(uuid, boot, before);
  }

  #remember(uuid: string, boot: Boot | undefined): void {
    if (boot === undefined) return;
    this.#fetched.set(uuid, {
      seq: boot.seq,
      metadata: boot.metadataAt !== null || isFinal(boot.phase),
      userData: boot.userDataAt !== null || isFinal(boot.phase),
    });
  }
}
