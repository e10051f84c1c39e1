/**
 * What mdserver tells its operator: the one logger (one line per event, to
 * stderr, journald-aware) and the Prometheus metrics. It imports nothing;
 * every other part may import it.
 *
 * @module
 */

export {
  createLogger,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  MAX_LOG_LINE,
  type ReloadableLogger,
  silentLogger,
} from "./log.ts";
export { BurstLog, type BurstLogOptions, type EventCounter } from "./burst_log.ts";
export { type GaugeSampler, LATENCY_BUCKETS, Metrics } from "./metrics.ts";
