/**
 * One log line per burst of a repeated event (store contention) instead of
 * one per event: the first event of a burst is logged at once, later ones
 * are counted and summed up in one line at most every interval.
 *
 * @module
 */

import type { Logger } from "./log.ts";

/** Something events are noted to. */
export interface EventCounter {
  /** Notes one event with what is known of it. */
  note(detail: string): void;
}

/** Options of a BurstLog. */
export interface BurstLogOptions {
  /** What the events are, at the start of each line ("store busy"). */
  what: string;
  /** Shortest time between two lines, in ms. */
  intervalMs: number;
  /** The clock in ms; default performance.now(). */
  now?: () => number;
}

/** Logs the first event of a burst, then one summary line per interval while events keep coming. */
export class BurstLog implements EventCounter {
  readonly #log: Logger;
  readonly #what: string;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #windowStart: number | null = null;
  #count = 0;
  #last = "";

  /** A burst log writing warnings to `log`. */
  constructor(log: Logger, options: BurstLogOptions) {
    this.#log = log;
    this.#what = options.what;
    this.#intervalMs = options.intervalMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Notes one event: logged at once when it starts a burst, else counted. */
  note(detail: string): void {
    const now = this.#now();
    const seconds = Math.round(this.#intervalMs / 1000);
    if (this.#windowStart !== null && now - this.#windowStart >= this.#intervalMs) {
      if (this.#count > 0) {
        this.#log.warning(`${this.#what}: ${this.#count} retries in the last ${seconds} s (last: ${this.#last})`);
      }
      // Quiet since the last line: this event starts a new burst.
      const quiet = this.#count === 0 || now - this.#windowStart >= 2 * this.#intervalMs;
      this.#count = 0;
      this.#windowStart = quiet ? null : now;
    }
    if (this.#windowStart === null) {
      this.#windowStart = now;
      this.#log.warning(`${this.#what}: ${detail}; more of it is counted and logged at most every ${seconds} s`);
      return;
    }
    this.#count++;
    this.#last = detail;
  }
}
