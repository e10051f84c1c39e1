#!/usr/bin/env -S deno run -P=bench
/**
 * Does an upload cost more when many instances are known? Registers N
 * domains one after another through the real upload path (domain XML →
 * store with address allocation in a KV file → dnsmasq record files, with
 * `manage = no`) and compares the time per upload of the first and the last
 * thousand. A ratio near 1 means no per-upload cost grows with the number of
 * instances.
 *
 *   deno task bench -- --only upload    (10,000 uploads, with the other benchmarks' table)
 *   deno run -P=bench bench/upload_scaling.ts 2000
 *
 * Prints a table and one line of JSON.
 *
 * @module
 */

import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { startDnsmasq } from "../src/dnsmasq/mod.ts";
import { silentLogger } from "../src/log/log.ts";
import { registerDomainXml } from "../src/store/registration.ts";
import { createStore } from "../src/service/service.ts";
import { openBackend } from "../src/store/open.ts";

/** The numbers of one window of uploads. */
export interface WindowStats {
  uploads: string;
  meanMs: number;
  medianMs: number;
  p95Ms: number;
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}

/** A minimal libvirt domain with one interface on the managed network (bench instance number index). */
export function domainXml(index: number): string {
  const uuid = `${hex(index, 8)}-0000-4000-8000-${hex(index, 12)}`;
  const mac = `52:54:00:${hex((index >> 16) & 255, 2)}:${hex((index >> 8) & 255, 2)}:${hex(index & 255, 2)}`;
  return `<domain type='kvm'>
  <name>bench-${index}</name>
  <uuid>${uuid}</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu>1</vcpu>
  <devices>
    <interface type='network'>
      <mac address='${mac}'/>
      <source network='mds'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>`;
}

function stats(label: string, times: number[]): WindowStats {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const mean = times.reduce((sum, time) => sum + time, 0) / times.length;
  return {
    uploads: label,
    meanMs: round(mean),
    medianMs: round(at(0.5)),
    p95Ms: round(at(0.95)),
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** What runUploadScaling measured. */
export interface UploadScalingResult {
  benchmark: "upload_scaling";
  count: number;
  window: number;
  totalSeconds: number;
  first: WindowStats;
  /** The second window (steady state after warm-up), when there are at least three. */
  second: WindowStats | null;
  last: WindowStats;
  /** Mean time per upload of the last window over the first. */
  ratio: number;
  medianRatio: number;
  allocated: number;
  records: number;
}

/** Registers `count` domains one after another and compares the first and last windows of 1000. */
export async function runUploadScaling(count = 10_000, storeIni = ""): Promise<UploadScalingResult> {
  const window = Math.min(1000, Math.floor(count / 2));
  if (!Number.isInteger(count) || window < 1) {
    throw new RangeError(`expected a count of at least 2, got "${count}"`);
  }

  const dir = await Deno.makeTempDir({ prefix: "mdserver-bench-" });
  try {
    await Deno.mkdir(join(dir, "userdata"));
    await Deno.writeTextFile(
      join(dir, "mdserver.conf"),
      `[mdserver]
userdata_dir = userdata
kv_file = mdserver.kv

[admin]
socket = ${join(dir, "run", "admin.sock")}

[dnsmasq]
net_address = 10.122.0.0
net_prefix = 16
gateway = 10.122.0.1
base_dir = dnsmasq
run_dir = run
prefix = vm-
domain = mds.test
entry_order = fqdn,prefix,base
manage = no
${storeIni}`,
    );
    const config = await loadConfig(join(dir, "mdserver.conf"));
    const kv = await openBackend(config);
    const store = createStore(kv, config);
    const dnsmasq = await startDnsmasq(config, { store, log: silentLogger });

    const times: number[] = [];
    const started = performance.now();
    for (let index = 0; index < count; index++) {
      const xml = domainXml(index);
      const before = performance.now();
      await registerDomainXml(xml, { store, config });
      times.push(performance.now() - before);
    }
    const totalS = (performance.now() - started) / 1000;
    await dnsmasq.stop();
    let records = 0;
    for await (const _ of Deno.readDir(dnsmasq.paths.dhcpHostsDir)) records++;
    const allocated = await store.allocatedCount();
    kv.close();

    const first = stats(`1–${window}`, times.slice(0, window));
    const last = stats(`${count - window + 1}–${count}`, times.slice(-window));
    // The first window includes warm-up (JIT, caches); the second shows the steady state.
    const second = count >= 3 * window ? stats(`${window + 1}–${2 * window}`, times.slice(window, 2 * window)) : null;
    return {
      benchmark: "upload_scaling",
      count,
      window,
      totalSeconds: round(totalS),
      first,
      second,
      last,
      ratio: round(last.meanMs / first.meanMs),
      medianRatio: round(last.medianMs / first.medianMs),
      allocated,
      records,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function main(): Promise<void> {
  const count = Number(Deno.args[0] ?? "10000");
  const result = await runUploadScaling(count);
  const { first, second, last } = result;
  {
    const rows = [["uploads", "mean ms", "median ms", "p95 ms"]];
    for (const row of second ? [first, second, last] : [first, last]) {
      rows.push([
        row.uploads,
        row.meanMs.toFixed(3),
        row.medianMs.toFixed(3),
        row.p95Ms.toFixed(3),
      ]);
    }
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    const out = (line: string) => Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
    out(
      `${count} sequential uploads in ${
        result.totalSeconds.toFixed(1)
      } s (${result.allocated} addresses held, ${result.records} DHCP records)`,
    );
    for (const row of rows) {
      out(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  "));
    }
    out(`ratio last/first: mean ${result.ratio}, median ${result.medianRatio}`);
    if (second) {
      out(`ratio last/second: mean ${round(last.meanMs / second.meanMs)}`);
    }
    out(JSON.stringify(result));
  }
}

if (import.meta.main) await main();
