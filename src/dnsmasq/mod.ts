/**
 * dnsmasq for the managed network: its configuration, options and one DHCP
 * and one hosts record per instance (render.ts: pure text), those files kept
 * in step with the store (records.ts), the integration that follows store
 * changes with reloads and restarts (integration.ts), and the supervised
 * dnsmasq process (process.ts). It may import config/, ipam/, domain/,
 * io/, log/ and the store's types; nothing from http/ or guest_api/.
 *
 * @module
 */

export { RecordFilesFullError } from "./errors.ts";
export { type DnsmasqHandle, startDnsmasq, type StartDnsmasqOptions } from "./integration.ts";
export {
  type Backoff,
  DEFAULT_BACKOFF,
  type DnsmasqProcessOptions,
  DnsmasqSupervisor,
  nextDelay,
  signalPidFile,
} from "./process.ts";
export {
  applyStoreEvent,
  rebuildHostRecords,
  type RebuildSummary,
  type RecordChange,
  type RecordOutcome,
  removeHostRecord,
  writeDnsmasqConfig,
  writeHostRecord,
} from "./records.ts";
// Every renderer is public: the pure text of each file dnsmasq reads.
export * from "./render.ts";
