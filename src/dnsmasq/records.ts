/**
 * The files dnsmasq reads, kept in step with the store: the configuration
 * and options files, one DHCP and one hosts record per instance (written
 * atomically, unchanged files left alone), a rebuild at start, and what a
 * store event asks of a running dnsmasq (reload or restart).
 *
 * @module
 */

import { join } from "node:path";
import type { Config } from "../config/config.ts";
import { removeFile, updateFile, type WriteOutcome } from "../io/files.ts";
import type { Instance } from "../store/instance.ts";
import type { StoreEvent } from "../store/store.ts";
import {
  type DnsmasqPaths,
  dnsmasqPaths,
  recordFileName,
  renderDhcpHost,
  renderDnsmasqConf,
  renderDnsmasqOpts,
  renderHostsEntry,
} from "./render.ts";

/** Creates the folders and writes the configuration and options files; true when either changed. */
export async function writeDnsmasqConfig(
  config: Config,
  paths: DnsmasqPaths = dnsmasqPaths(config),
): Promise<boolean> {
  for (
    const dir of [
      paths.baseDir,
      paths.dhcpHostsDir,
      paths.hostsDir,
      paths.runDir,
    ]
  ) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  }
  const conf = await updateFile(paths.confFile, renderDnsmasqConf(config));
  const opts = await updateFile(paths.optsFile, renderDnsmasqOpts(config));
  return conf === "changed" || opts === "changed";
}

/** What writing an instance's records did, per record. */
export interface RecordOutcome {
  /** What happened to the DHCP record. */
  dhcp: WriteOutcome;
  /** What happened to the hosts record. */
  hosts: WriteOutcome;
}

/** Writes one instance's two record files (two small files, whatever the number of instances). */
export async function writeHostRecord(
  config: Config,
  paths: DnsmasqPaths,
  instance: Instance,
): Promise<RecordOutcome> {
  const name = recordFileName(instance);
  const dhcp = await updateFile(
    join(paths.dhcpHostsDir, name),
    renderDhcpHost(config, instance),
  );
  const hosts = await updateFile(
    join(paths.hostsDir, name),
    renderHostsEntry(config, instance),
  );
  return { dhcp, hosts };
}

/** Removes one instance's record files; says which existed. */
export async function removeHostRecord(
  paths: DnsmasqPaths,
  instance: Pick<Instance, "uuid">,
): Promise<{ dhcp: boolean; hosts: boolean }> {
  const name = recordFileName(instance);
  return {
    dhcp: await removeFile(join(paths.dhcpHostsDir, name)),
    hosts: await removeFile(join(paths.hostsDir, name)),
  };
}

/** What a rebuild did. */
export interface RebuildSummary {
  /** Instances in the store. */
  instances: number;
  /** Record files written. */
  written: number;
  /** Record files that already held the right text. */
  unchanged: number;
  /** Stale files removed. */
  removed: number;
  /** Whether a DHCP record was changed or removed (a running dnsmasq needs SIGHUP). */
  dhcpChanged: boolean;
}

/** A rebuild reports progress after this many instances. */
export const REBUILD_PROGRESS_EVERY = 1000;

/**
 * Makes the record folders match the instances: writes every instance's
 * records and removes every other file (stale records, left-over temporary files).
 */
export async function rebuildHostRecords(
  config: Config,
  paths: DnsmasqPaths,
  instances: AsyncIterable<Instance> | Iterable<Instance>,
  onProgress?: (done: number) => void,
): Promise<RebuildSummary> {
  const keep = new Set<string>();
  const summary: RebuildSummary = {
    instances: 0,
    written: 0,
    unchanged: 0,
    removed: 0,
    dhcpChanged: false,
  };
  for await (const instance of instances) {
    summary.instances++;
    const outcome = await writeHostRecord(config, paths, instance);
    keep.add(recordFileName(instance));
    for (const result of [outcome.dhcp, outcome.hosts]) {
      if (result === "unchanged") summary.unchanged++;
      else summary.written++;
    }
    if (outcome.dhcp === "changed") summary.dhcpChanged = true;
    if (summary.instances % REBUILD_PROGRESS_EVERY === 0) onProgress?.(summary.instances);
  }
  for (const dir of [paths.dhcpHostsDir, paths.hostsDir]) {
    for await (const entry of Deno.readDir(dir)) {
      if (keep.has(entry.name)) continue;
      await Deno.remove(join(dir, entry.name), { recursive: true });
      summary.removed++;
      if (dir === paths.dhcpHostsDir && !entry.name.startsWith(".")) {
        summary.dhcpChanged = true;
      }
    }
  }
  return summary;
}

/** What dnsmasq must do after a change, with the reason, or null. */
export interface RecordChange {
  /** Re-read host records (SIGHUP): a DHCP record was changed or replaced. */
  reload: string | null;
  /**
   * Forget its leases (restart; dnsmasq keeps them in memory only): an
   * instance was removed, whose lease would keep its name resolving and its
   * address from any other MAC, or an address moved to another MAC.
   */
  restart: string | null;
}

/** Applies one store event to the record files and says what dnsmasq must do about it. */
export async function applyStoreEvent(
  config: Config,
  paths: DnsmasqPaths,
  event: StoreEvent,
): Promise<RecordChange> {
  const change: RecordChange = { reload: null, restart: null };
  if (event.type === "delete") {
    const removed = await removeHostRecord(paths, event.instance);
    if (removed.dhcp) change.restart = `${event.instance.name} removed`;
    return change;
  }
  const { instance, previous, replaced } = event;
  if (replaced && replaced.uuid !== instance.uuid) {
    const removed = await removeHostRecord(paths, replaced);
    if (removed.dhcp) {
      change.reload = `${replaced.name} (${replaced.uuid}) replaced by ${instance.uuid}`;
    }
  }
  for (const old of [previous, replaced]) {
    if (
      old && old.ipv4 === instance.ipv4 &&
      old.mac.toLowerCase() !== instance.mac.toLowerCase()
    ) {
      change.restart = `${instance.ipv4} moved from ${old.mac} to ${instance.mac} (${instance.name})`;
    }
  }
  const outcome = await writeHostRecord(config, paths, instance);
  if (outcome.dhcp === "changed") change.reload ??= `${instance.name} changed`;
  return change;
}
