/**
 * `POST /boot-events` on the metadata listener: cloud-init's webhook
 * reporter posting one JSON event per request (the built-in vendor-data
 * configures it). Taken only from a known guest's own address, for that
 * instance's current boot, and bounded: the body by `[events]
 * max_event_size` (413), the rate per instance by `rate` and `burst` (a
 * token bucket), the events kept per boot by `max_events_per_boot`.
 *
 * Events over the rate or the per-boot count are answered 202 and counted
 * as dropped, not refused: cloud-init logs every refused post as a
 * warning, which current releases count as a recoverable error of the
 * guest's boot. A late repeat for a boot that has ended is 202 too.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import type { Instance } from "../store/instance.ts";
import { type BootJournal, parseReportingEvent } from "../store/mod.ts";
import type { Logger } from "../log/log.ts";
import type { Metrics } from "../log/metrics.ts";
import { readBody } from "./body.ts";
import { HttpError, textResponse } from "./errors.ts";

/** What the endpoint needs. */
export interface BootEventDeps {
  /** The effective configuration (`[events]`). */
  config: Config;
  /** Where the boots are kept. */
  boots: BootJournal;
  /** Counts events by fate. */
  metrics: Metrics;
  /** Where refusals are logged. */
  log: Logger;
}

/** Tokens per instance: a bucket of `burst` refilled at `rate` per second. */
export class EventRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;

  /** A limiter reading `now` (ms) for its refills; default performance.now(). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string, rate: number, burst: number): boolean {
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    // Full buckets carry nothing worth keeping: the map holds only instances posting now.
    if (this.#buckets.size > 10_000) this.#sweep(rate, burst);
    return true;
  }

  #sweep(rate: number, burst: number): void {
    const now = this.#now();
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * rate >= burst) this.#buckets.delete(key);
    }
  }
}

/** cloud-init boot events by fate: taken, or answered 202 and not kept (dropped, stale). */
const EVENTS_TOTAL = "mdserver_boot_events_total";
const EVENTS_HELP = "cloud-init boot events by fate: taken, or answered 202 and not kept (dropped, stale).";

/** Counts an event's fate in the metrics. */
function count(metrics: Metrics, fate: "taken" | "dropped" | "stale"): void {
  metrics.incrementLabelled(EVENTS_TOTAL, EVENTS_HELP, { fate });
}

/** Declares the event counter, so every fate is present (at 0) from the first scrape. */
export function declareBootEventCounters(metrics: Metrics): void {
  metrics.declareLabelledCounter(EVENTS_TOTAL, EVENTS_HELP, [{ fate: "taken" }, { fate: "dropped" }, {
    fate: "stale",
  }]);
}

/**
 * Answers one event from `instance` (already identified by its address).
 * `limiter` is the listener's own, shared by its requests.
 */
export async function answerBootEvent(
  request: Request,
  instance: Instance,
  deps: BootEventDeps,
  limiter: EventRateLimiter,
): Promise<Response> {
  const { events } = deps.config;
  if (!events.enabled) throw new HttpError(404, "boot events are off ([events] enabled = no)");
  const body = await readBody(request, events.maxEventBytes);
  if (!limiter.take(instance.uuid, events.rate, events.burst)) {
    count(deps.metrics, "dropped");
    deps.boots.dropped(instance.uuid);
    return textResponse("dropped: over the rate limit", 202);
  }
  const event = parseReportingEvent(body);
  if (typeof event === "string") throw new HttpError(400, `not a cloud-init reporting event: ${event}`);
  const fate = await deps.boots.event(instance.uuid, event);
  count(deps.metrics, fate);
  if (fate === "taken") return new Response(null, { status: 204 });
  return textResponse(fate === "stale" ? "ignored: the boot has ended" : "dropped: too many events this boot", 202);
}
