/**
 * Cleanup actions of an e2e run: registered as things are started, run
 * once, in reverse order, whatever happens (a failed step, SIGINT, SIGTERM).
 *
 * @module
 */

import { message } from "./report.ts";

/** Cleanup actions, run once, in reverse order. */
export class Cleanup {
  readonly #actions: { name: string; fn: () => Promise<unknown> }[] = [];
  #running: Promise<string[]> | null = null;

  /** Registers an action. */
  add(name: string, fn: () => Promise<unknown>): void {
    this.#actions.push({ name, fn });
  }

  /** Runs every action; resolves with the failures (never throws). */
  run(): Promise<string[]> {
    this.#running ??= (async () => {
      const failures: string[] = [];
      while (this.#actions.length > 0) {
        const action = this.#actions.pop()!;
        try {
          await action.fn();
        } catch (error) {
          failures.push(`${action.name}: ${message(error)}`);
        }
      }
      return failures;
    })();
    return this.#running;
  }
}
