/**
 * Boot tracking wired into the running service: every upload opens a boot
 * (the hook uploads at `prepare begin`), a deleted instance's boots go with
 * it, and the metrics count how boots end — boots by outcome, their
 * duration by outcome, and the time from the start to the first metadata
 * fetch — every series present from the first scrape.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import type { EventCounter } from "../log/burst_log.ts";
import type { Logger } from "../log/log.ts";
import type { Metrics } from "../log/metrics.ts";
import { declareBootEventCounters } from "../http/mod.ts";
import { type Boot, BootJournal, type InstanceStore, isFinal, type KeyValueBackend } from "../store/mod.ts";

/** Bucket bounds of the boot duration histogram, in seconds (a TCG boot takes minutes). */
const DURATION_BUCKETS = [5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200];
/** Bucket bounds of the start to first fetch histogram, in seconds. */
const FIRST_FETCH_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

const OUTCOMES = ["done", "degraded", "failed"] as const;

/** Boots that ended, by outcome. */
const BOOTS_TOTAL = "mdserver_boots_total";
const BOOTS_HELP = "Boots that ended, by outcome (done, degraded, failed).";

/** What boot tracking needs. */
export interface BootTrackingOptions {
  /** The service's logger. */
  log: Logger;
  /** The instance store whose uploads and deletions open and drop boots. */
  store: InstanceStore;
  /** Where the outcome metrics go. */
  metrics: Metrics;
  /** Where commit conflicts are counted. */
  contention?: EventCounter;
}

/** The journal of every instance's boots, subscribed to the store and counted in the metrics. */
export function startBootTracking(
  backend: KeyValueBackend,
  config: Config,
  options: BootTrackingOptions,
): BootJournal {
  const { log, store, metrics } = options;
  const boots = new BootJournal(backend, {
    log,
    history: config.events.history,
    maxEventsPerBoot: config.events.maxEventsPerBoot,
    ...(options.contention ? { contention: options.contention } : {}),
  });
  // Boot tracking never fails an upload or a deletion: a write it could not make is logged.
  store.subscribe(async (event) => {
    const { uuid, name } = event.instance;
    try {
      if (event.type === "delete") boots.forget(uuid);
      else if (!event.takenBack && event.upload !== "ahead") await boots.start(uuid);
    } catch (error) {
      log.warning(
        `boots of ${name}: ${event.type === "delete" ? "not removed" : "no boot opened"}: ${(error as Error).message}`,
      );
    }
  });

  metrics.declareLabelledCounter(BOOTS_TOTAL, BOOTS_HELP, OUTCOMES.map((outcome) => ({ outcome })));
  declareBootEventCounters(metrics);
  metrics.declareHistogram(
    "mdserver_boot_duration_seconds",
    "Time from a boot's start to its end, by outcome.",
    DURATION_BUCKETS,
    OUTCOMES.map((outcome) => ({ outcome })),
  );
  metrics.declareHistogram(
    "mdserver_boot_first_fetch_seconds",
    "Time from a boot's start to the guest's first metadata fetch.",
    FIRST_FETCH_BUCKETS,
    [{}],
  );
  boots.subscribe((uuid, boot, before) => {
    if (boot.metadataAt !== null && before?.metadataAt == null && boot.cause === "start") {
      metrics.observe("mdserver_boot_first_fetch_seconds", {}, seconds(boot.openedAt, boot.metadataAt));
    }
    if (isFinal(boot.phase) && (before === null || !isFinal(before.phase))) {
      metrics.incrementLabelled(BOOTS_TOTAL, BOOTS_HELP, { outcome: boot.phase });
      metrics.observe("mdserver_boot_duration_seconds", { outcome: boot.phase }, seconds(boot.openedAt, boot.endedAt!));
      log.info(
        `boot ${boot.phase}: ${uuid} #${boot.seq} in ${seconds(boot.openedAt, boot.endedAt!).toFixed(1)}s${
          problemText(boot)
        }`,
      );
    }
  });
  return boots;
}

function seconds(from: string, to: string): number {
  return Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
}

function problemText(boot: Boot): string {
  return boot.problem === null ? "" : ` (${boot.problem.stage}/${boot.problem.module}: ${boot.problem.message})`;
}
