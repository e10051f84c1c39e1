/**
 * What the guest HTTP server counts: connections open and accepted, requests
 * served, and every connection or request it refused, by reason. Refusals are
 * reported in bursts — at most one report per interval, with the counts since
 * the last one — so a flood of refused connections gives one log line, not
 * one per connection.
 *
 * @module
 */

/** Why the server refused a request or closed a connection early. */
export type RefusalReason =
  /** The source address already holds its connection cap (503). */
  | "source_cap"
  /** The server already holds its global connection cap (503). */
  | "global_cap"
  /** The request line or headers do not parse (400). */
  | "malformed"
  /** Request line plus headers exceed the size cap (414 or 431). */
  | "head_too_large"
  /** More header fields than the cap (431). */
  | "too_many_headers"
  /** The head did not arrive within its timeout (closed). */
  | "head_timeout"
  /** The body is larger than the cap (413). */
  | "body_too_large"
  /** The body did not arrive within its timeout (closed). */
  | "body_timeout"
  /** A guest did not take a response within the write timeout (closed). */
  | "write_timeout"
  /** An HTTP version other than 1.0 and 1.1, the HTTP/2 preface among them (505). */
  | "version"
  /** A method this server does not run: CONNECT, TRACE, TRACK (405). */
  | "method"
  /** An `Expect` other than `100-continue` (417). */
  | "expectation"
  /** The connection closed, or was closed at shutdown, before its request was complete. */
  | "incomplete";

/** Every refusal reason, in report order. */
export const REFUSAL_REASONS: readonly RefusalReason[] = [
  "source_cap",
  "global_cap",
  "malformed",
  "head_too_large",
  "too_many_headers",
  "head_timeout",
  "body_too_large",
  "body_timeout",
  "write_timeout",
  "version",
  "method",
  "expectation",
  "incomplete",
];

/** Counts of refusals by reason (reasons with none are absent). */
export type RefusalCounts = Partial<Record<RefusalReason, number>>;

/** A snapshot of the server's counters. */
export interface ServerStats {
  /** Connections open now. */
  openConnections: number;
  /** Source addresses with at least one open connection. */
  openSources: number;
  /** Connections accepted since start (refused ones included). */
  acceptedConnections: number;
  /** Requests whose handler ran. */
  requests: number;
  /** Kept-alive connections closed because they stayed idle past the idle timeout (not a refusal). */
  idleClosed: number;
  /** Refusals since start, by reason. */
  refused: RefusalCounts;
}

/** A burst of refusals: counts since the previous report and the sources that caused the most. */
export interface RefusalReport {
  /** Refusals by reason in this burst. */
  counts: RefusalCounts;
  /** Up to five source addresses with the most refusals in this burst, most first. */
  topSources: { address: string; count: number }[];
  /** Length of the burst window, ms. */
  windowMs: number;
}

/** One log line for a burst, e.g. `refused 4968 connections/requests: source_cap=4968 (from 127.0.0.5 ×4968)`. */
export function formatRefusalReport(report: RefusalReport): string {
  const total = Object.values(report.counts).reduce((sum, count) => sum + (count ?? 0), 0);
  const reasons = REFUSAL_REASONS.filter((reason) => report.counts[reason]).map((reason) =>
    `${reason}=${report.counts[reason]}`
  );
  const sources = report.topSources.map((source) => `${source.address} ×${source.count}`).join(", ");
  return `guest HTTP refused ${total} in ${Math.round(report.windowMs / 100) / 10} s: ${reasons.join(" ")}` +
    (sources ? ` (from ${sources})` : "");
}

/** The counters of one server, with the burst reporter. */
export class ServerCounters {
  openConnections = 0;
  acceptedConnections = 0;
  requests = 0;
  idleClosed = 0;
  readonly #refused: RefusalCounts = {};
  #burst: RefusalCounts = {};
  #burstSources = new Map<string, number>();
  #burstStarted = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #report: ((report: RefusalReport) => void) | undefined;
  readonly #intervalMs: number;

  constructor(options: { onRefusals?: (report: RefusalReport) => void; reportIntervalMs?: number } = {}) {
    this.#report = options.onRefusals;
    this.#intervalMs = options.reportIntervalMs ?? 10_000;
  }

  /** Counts one refusal; the first of a burst schedules its report. */
  refuse(reason: RefusalReason, source: string): void {
    this.#refused[reason] = (this.#refused[reason] ?? 0) + 1;
    if (!this.#report) return;
    this.#burst[reason] = (this.#burst[reason] ?? 0) + 1;
    // Bounded: a burst remembers at most 1,000 distinct sources.
    if (this.#burstSources.size < 1_000 || this.#burstSources.has(source)) {
      this.#burstSources.set(source, (this.#burstSources.get(source) ?? 0) + 1);
    }
    if (this.#timer === undefined) {
      this.#burstStarted = Date.now();
      const timer = setTimeout(() => this.flush(), this.#intervalMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /** Reports the burst in progress now, if any. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#report || Object.keys(this.#burst).length === 0) return;
    const topSources = [...this.#burstSources].sort((a, b) => b[1] - a[1]).slice(0, 5)
      .map(([address, count]) => ({ address, count }));
    const report = { counts: this.#burst, topSources, windowMs: Date.now() - this.#burstStarted };
    this.#burst = {};
    this.#burstSources = new Map();
    this.#report(report);
  }

  /** A snapshot (the refusal counts are a copy). */
  snapshot(openSources: number): ServerStats {
    return {
      openConnections: this.openConnections,
      openSources,
      acceptedConnections: this.acceptedConnections,
      requests: this.requests,
      idleClosed: this.idleClosed,
      refused: { ...this.#refused },
    };
  }
}
