/**
 * Folding the reloads and restarts that record changes ask of dnsmasq: the
 * first goes at once, a burst (gc removing many instances) folds into one
 * more after the interval, and a restart wins over a reload.
 *
 * @module
 */

/** What dnsmasq is asked to do: re-read its records (SIGHUP) or start again. */
export type DnsmasqAction = "reload" | "restart";

/** Carries out one action; `reason` says why, for the log. */
export type PerformAction = (action: DnsmasqAction, reason: string) => Promise<void>;

/** Rate-limits actions to one per interval, folding those in between into one. */
export class ReloadScheduler {
  readonly #perform: PerformAction;
  readonly #intervalMs: number;
  readonly #onError: (error: unknown) => void;
  #last = -Infinity;
  #pending: DnsmasqAction | null = null;
  #reasons: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #delayed: Promise<void> = Promise.resolve();

  /** A scheduler calling `perform` at most once per `intervalMs`; errors of a delayed action go to `onError`. */
  constructor(perform: PerformAction, options: { intervalMs: number; onError: (error: unknown) => void }) {
    this.#perform = perform;
    this.#intervalMs = options.intervalMs;
    this.#onError = options.onError;
  }

  /** Asks for an action: performed now when the interval has passed, else folded into the next one. */
  async request(action: DnsmasqAction, reason: string): Promise<void> {
    const wait = this.#last + this.#intervalMs - Date.now();
    if (wait <= 0 && this.#timer === undefined) return await this.#run(action, reason);
    this.#pending = this.#pending === "restart" ? "restart" : action;
    this.#reasons.push(reason);
    this.#timer ??= setTimeout(() => {
      this.#delayed = this.#flush().catch(this.#onError);
    }, Math.max(0, wait));
  }

  /**
   * Waits for a delayed action under way; one still waiting for its turn is
   * dropped, or performed now with `flushPending`.
   */
  async stop(options: { flushPending: boolean }): Promise<void> {
    await this.#delayed;
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    if (options.flushPending) await this.#flush();
    this.#timer = undefined;
  }

  #flush(): Promise<void> {
    this.#timer = undefined;
    const action = this.#pending!;
    const reasons = this.#reasons;
    this.#pending = null;
    this.#reasons = [];
    return this.#run(action, reasons.length === 1 ? reasons[0]! : `${reasons.length} records removed or changed`);
  }

  #run(action: DnsmasqAction, reason: string): Promise<void> {
    this.#last = Date.now();
    return this.#perform(action, reason);
  }
}
