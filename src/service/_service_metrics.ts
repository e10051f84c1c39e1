/**
 * The service's own metrics besides the request counters: build info, boot
 * states, the pool, the store's backend and dnsmasq's restarts. Every
 * sampler is O(1) in the instance count (the tally is kept up to date).
 *
 * @module
 */

import { poolSize } from "../ipam/ipv4.ts";
import type { Metrics } from "../log/metrics.ts";
import type { InstanceStore } from "../store/mod.ts";
import { stateLabel, type StateTally } from "./state_tally.ts";

/** What the metrics read at scrape time; every sampler is O(1) in the instance count. */
export interface MetricSources {
  store: InstanceStore;
  tally: StateTally;
  version: string;
  restarts: () => number;
}

/** Registers the gauges and counters the service samples at scrape time. */
export function registerMetrics(metrics: Metrics, sources: MetricSources) {
  const { store, tally } = sources;
  metrics.gauge(
    "mdserver_build_info",
    "mdserver's version; always 1.",
    () => Promise.resolve([[{ version: sources.version }, 1]]),
  );
  metrics.declareCounter("mdserver_template_errors_total", "User-data and vendor-data templates that failed.");
  metrics.gauge(
    "mdserver_instances",
    "Instances by boot state.",
    () => Promise.resolve(tally.counts().map(([state, count]) => [{ state: stateLabel(state) }, count])),
  );
  metrics.gauge(
    "mdserver_pool_size_addresses",
    "Addresses the pool can hand out.",
    () => Promise.resolve([[{}, poolSize(store.pool)]]),
  );
  metrics.gauge(
    "mdserver_pool_used_addresses",
    "Addresses of the pool held by instances.",
    async () => [[{}, await store.allocatedCount()]],
  );
  registerStoreMetrics(metrics, store);
  metrics.sampledCounter(
    "mdserver_dnsmasq_restarts_total",
    "Times the managed dnsmasq was started again.",
    () => Promise.resolve([[{}, sources.restarts()]]),
  );
}

/** The store's state: its backend reachable, and on etcd how far behind and since when its watch is. */
function registerStoreMetrics(metrics: Metrics, store: InstanceStore) {
  metrics.gauge(
    "mdserver_store_reachable",
    "Whether the store's backend answered its last request (1) or not (0).",
    () => {
      const status = store.status();
      return Promise.resolve([[{ backend: status.backend }, status.reachable ? 1 : 0]]);
    },
  );
  metrics.gauge(
    "mdserver_store_watch_lag_revisions",
    "etcd: revisions between the newest this host read or wrote and the newest its watch delivered.",
    () => {
      const status = store.status();
      if (status.watch === null) return Promise.resolve([]);
      const newest = Number(status.details.revision ?? 0);
      return Promise.resolve([[{}, Math.max(0, newest - status.watch.revision)]]);
    },
  );
  metrics.gauge(
    "mdserver_store_watch_lost_seconds",
    "etcd: seconds since the watch was lost (0 while it is up): how stale guests' answers may be.",
    () => {
      const watch = store.status().watch;
      if (watch === null) return Promise.resolve([]);
      const lost = watch.lostSinceMs === null ? 0 : (Date.now() - watch.lostSinceMs) / 1000;
      return Promise.resolve([[{}, lost]]);
    },
  );
}
