/**
 * Commits for the store, with its retry policy: a failed check or a failed
 * commit answers null, so the caller reads again and retries (at most
 * MAX_COMMIT_ATTEMPTS times, then StoreBusyError from `busy`). Deno KV
 * reports another process holding the database lock (shared storage) as a
 * TypeError, as it does every refusal, so a failure is not told apart by its
 * text: the refusals that input can cause (a value or key too large) are
 * checked before committing. A backend that cannot be reached
 * (StoreUnavailableError) is not retried: it already tried every endpoint.
 *
 * @module
 */

import { folderIsFull } from "../io/no_space.ts";
import { sleep } from "../io/sleep.ts";
import type { EventCounter } from "../log/burst_log.ts";
import type { StoreCommitResult } from "./backend.ts";
import { StoreBusyError, StoreFullError, StoreUnavailableError } from "./errors.ts";

/** How often a change is tried before the store is called busy. */
export const MAX_COMMIT_ATTEMPTS = 64;

/** Runs commits and counts their conflicts and failures. */
export class Committer {
  readonly #contention: EventCounter | null;
  readonly #spaceProbeDir: string | null;
  /** Why the last commit failed, for the StoreBusyError that ends the retries. */
  #lastError: unknown = null;

  /** A committer noting contention in `contention`, probing `spaceProbeDir` for space after a failure. */
  constructor(contention: EventCounter | null, spaceProbeDir: string | null) {
    this.#contention = contention;
    this.#spaceProbeDir = spaceProbeDir;
  }

  /** Commits, returning the commit's version; null when the caller should read again and retry. */
  async commit(op: { commit(): Promise<StoreCommitResult> }): Promise<string | null> {
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
      this.#lastError = error;
      await sleep(2 + Math.random() * 20);
      return null;
    }
  }

  /** A StoreBusyError for `what`, with the last commit failure as its cause. */
  busy(what: string): StoreBusyError {
    const cause = this.#lastError;
    const last = cause instanceof Error ? ` (last failure: ${cause.message})` : "";
    return new StoreBusyError(`${what}: the store stayed busy after ${MAX_COMMIT_ATTEMPTS} attempts${last}`, { cause });
  }
}
