#!/usr/bin/env -S deno run -P=bench
/**
 * Costs that must stay flat in the number of instances, with N = 10, 10,000
 * and 50,000 (or the counts given), each N in its own temporary folder and
 * its own mdserver process, the processes running side by side so that
 * every comparison between them is made within one run:
 *
 * - registering the N domains one after another through the upload path
 *   (domain XML → store with address allocation, in a KV file) before the
 *   service starts: the mean time of the last thousand over the first (and
 *   over the second, past the warm-up);
 * - listeners up: from spawning `main.ts serve` (after one start not
 *   counted, which fills the compile cache) until its metadata listener says
 *   it listens and its admin socket answers `/health`; then until the records
 *   behind them are rebuilt and the instances counted;
 * - `/metrics` and the first page of the instance list (`?limit=100`), the
 *   N in turn, median of `scrapes`;
 * - uploads over the admin API (`POST /v1/instances`, the hook's request)
 *   into every N in turn, blocks of 50: the mean at N over the mean at the
 *   first N; the next scrape must count every one of them;
 * - a storm: `storm` of the N guests (spread over the registration order)
 *   run cloud-init's whole EC2 sequence at once; how soon a scrape shows them
 *   out of `registered` (boot progress is written in batches); then VmRSS
 *   and VmHWM, per instance and, less the first N's, per added instance;
 *   again 15 s after the last storm;
 * - removals as `gc` makes them (`POST /v1/instances/delete`, 500 a
 *   request), `removals` at each N, ms per instance; the next scrape must
 *   count them. (A gc of all 50,000 takes far longer than the rest together.)
 *
 *   deno run -P=bench bench/scale.ts [--storm 500] [--uploads 1000] [--scrapes 20] [--removals 2000] [--bound-minutes 40] [10 10000 50000]
 *
 * Everything is on loopback (guests from 127.90.0.0/16). Prints a table and one line of JSON.
 *
 * @module
 */

import { adminRequest, readAdminEndpoint } from "../src/admin/endpoint.ts";
import { adminStore } from "../src/cli/ctl.ts";
import { GC_BATCH } from "../src/cli/gc.ts";
import { measure, planFor, settle } from "./boot_storm.ts";
import { type ProcessMemory, type ServerProcess, startMdserver } from "./server_process.ts";
import { type BenchSetup, prepareSetup } from "./storm_setup.ts";
import { domainXml } from "./upload_scaling.ts";

/** What one N measured. */
export interface ScaleRow {
  instances: number;
  registerSeconds: number;
  /** Registration ms, mean of the first, second and last thousand, and last/first, last/second; null below 3,000. */
  register: { firstMs: number; secondMs: number; lastMs: number; ratio: number; ratioSecond: number } | null;
  /** Mean registration ms of each thousand, in order (a trend, or the machine's load changing). */
  registerMsPerThousand: number[];
  listenersUpMs: number;
  /** Seconds from the spawn until the records were rebuilt and the instances counted. */
  settledSeconds: number;
  scrapeMs: number;
  listPageMs: number;
  /** Uploads over the admin API: mean ms, and over the first N's. */
  httpUploadMs: number;
  httpUploadRatio: number;
  /** The scrape right after the uploads counted every instance. */
  metricsCountedUploads: boolean;
  /**
   * Every stormed guest was out of `registered` in a scrape this many ms after the storm was over and the server
   * idle (boot progress is written in batches a second apart); null when not within 10 s.
   */
  stormCountedAfterMs: number | null;
  /** `mdserver_instances` by state, scraped right before and right after the storm. */
  statesBefore: Record<string, number>;
  statesAfter: Record<string, number>;
  storm: { guests: number; requests: number; errors: number; p50Ms: number; p99Ms: number };
  idle: ProcessMemory;
  afterStorm: ProcessMemory;
  /** 15 s after the last storm, every N read at once. */
  afterQuiet: ProcessMemory;
  /** VmRSS after the storm over N, KiB. */
  rssPerInstanceKiB: number;
  /** (VmRSS − the first N's VmRSS) / (N − the first N), KiB, after the storm and 15 s after the last one. */
  rssPerAddedInstanceKiB: number;
  quietPerAddedInstanceKiB: number;
  /** Removals through the admin API in gc's batches (`POST /v1/instances/delete`, 500 a request): how many, ms each. */
  removed: number;
  removeMsPerInstance: number;
  /** The scrape right after the removals counted them. */
  metricsCountedRemovals: boolean;
}

/** Options of the scale benchmark. */
export interface ScaleOptions {
  counts?: number[];
  storm?: number;
  uploads?: number;
  scrapes?: number;
  /** Instances removed at each N, in gc's batches; default 2,000. */
  removals?: number;
  boundMinutes?: number;
  progress?: (line: string) => void;
}

interface Running {
  count: number;
  setup: BenchSetup;
  server: ServerProcess | null;
  endpoint: Awaited<ReturnType<typeof readAdminEndpoint>>;
  row: Partial<ScaleRow>;
  uploadTimes: number[];
}

/** Uploads sent to one N before the next N's. */
const UPLOAD_BLOCK = 50;

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function admin(running: Running, path: string, init: { method?: string; body?: string } = {}): Promise<string> {
  const response = await adminRequest(running.endpoint, path, {
    ...init,
    ...(init.body ? { headers: { "content-type": "application/xml" } } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${text.slice(0, 200)}`);
  return text;
}

/** `mdserver_instances` of a scrape, by state. */
function instancesByState(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^mdserver_instances\{state="([^"]+)"\} (\d+)$/gm)) {
    counts.set(match[1]!, Number(match[2]));
  }
  return counts;
}

const total = (counts: Map<string, number>) => [...counts.values()].reduce((sum, value) => sum + value, 0);

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

function registerWindows(times: number[]): ScaleRow["register"] {
  if (times.length < 3000) return null;
  const first = mean(times.slice(0, 1000));
  const second = mean(times.slice(1000, 2000));
  const last = mean(times.slice(-1000));
  return {
    firstMs: round(first),
    secondMs: round(second),
    lastMs: round(last),
    ratio: round(last / first),
    ratioSecond: round(last / second),
  };
}

/** Measures every count side by side; the first count is the baseline. */
export async function runScale(options: ScaleOptions = {}): Promise<ScaleRow[]> {
  const counts = options.counts ?? [10, 10_000, 50_000];
  const stormSize = options.storm ?? 500;
  const uploads = options.uploads ?? 1000;
  const scrapes = options.scrapes ?? 20;
  const removals = options.removals ?? 2000;
  const deadline = performance.now() + (options.boundMinutes ?? 40) * 60_000;
  const progress = options.progress ?? (() => {});
  const inTime = (what: string) => {
    if (performance.now() > deadline) throw new Error(`scale: over its time bound before ${what}`);
  };
  const all: Running[] = [];
  try {
    for (const count of counts) {
      inTime(`registering ${count}`);
      progress(`scale: registering ${count} instances through the upload path`);
      const setup = await prepareSetup(count, "", (done, of) => progress(`scale: ${done} of ${of} registered`));
      all.push({
        count,
        setup,
        server: null,
        endpoint: await readAdminEndpoint(setup.configFile),
        row: {
          instances: count,
          registerSeconds: setup.registerSeconds,
          register: registerWindows(setup.registerMs),
          registerMsPerThousand: Array.from(
            { length: Math.floor(count / 1000) },
            (_, i) => round(mean(setup.registerMs.slice(i * 1000, (i + 1) * 1000))),
          ),
        },
        uploadTimes: [],
      });
      // The registration times are kept as windows; the array of 50,000 goes.
      setup.registerMs.length = 0;
    }
    // A first start reads and compiles the module graph from the cache: not counted.
    await (await startMdserver(all[0]!.setup.configFile)).stop();
    for (const running of all) {
      inTime(`starting ${running.count}`);
      progress(`scale: starting mdserver over ${running.count} instances`);
      const started = performance.now();
      running.server = await startMdserver(running.setup.configFile);
      await admin(running, "/health");
      running.row.listenersUpMs = round(performance.now() - started, 0);
      await running.server.startupLine(/dnsmasq: records of \d+ instances/, 900_000);
      await running.server.startupLine(/counted \d+ instances by boot state/, 900_000);
      running.row.settledSeconds = round((performance.now() - started) / 1000);
      await settle(running.server);
    }
    for (const running of all) running.row.idle = await running.server!.memory();

    inTime("the scrapes");
    progress(`scale: /metrics and the first list page, ${scrapes} times each, every N in turn`);
    const scrapeTimes = all.map(() => [] as number[]);
    const pageTimes = all.map(() => [] as number[]);
    for (const running of all) await admin(running, "/metrics"); // each one's first, not counted
    for (let turn = 0; turn < scrapes; turn++) {
      for (const [index, running] of all.entries()) {
        scrapeTimes[index]!.push(await timed(() => admin(running, "/metrics")));
        pageTimes[index]!.push(await timed(() => admin(running, "/v1/instances?limit=100")));
      }
    }

    inTime("the uploads");
    progress(`scale: ${uploads} uploads over the admin API into every N in turn`);
    const before = await Promise.all(
      all.map(async (running) => total(instancesByState(await admin(running, "/metrics")))),
    );
    for (let first = 0; first < uploads; first += UPLOAD_BLOCK) {
      for (const running of all) {
        for (let index = first; index < Math.min(uploads, first + UPLOAD_BLOCK); index++) {
          const xml = domainXml(0x400000 + index);
          running.uploadTimes.push(await timed(() => admin(running, "/v1/instances", { method: "POST", body: xml })));
        }
      }
    }
    for (const [index, running] of all.entries()) {
      const after = total(instancesByState(await admin(running, "/metrics")));
      running.row.metricsCountedUploads = after === before[index]! + uploads;
      running.row.scrapeMs = round(median(scrapeTimes[index]!));
      running.row.listPageMs = round(median(pageTimes[index]!));
      running.row.httpUploadMs = round(mean(running.uploadTimes));
      running.row.httpUploadRatio = round(mean(running.uploadTimes) / mean(all[0]!.uploadTimes));
    }

    for (const running of all) {
      inTime(`the storm at ${running.count}`);
      const guests = Math.min(stormSize, running.count);
      const step = running.count / guests;
      const chosen = Array.from({ length: guests }, (_, i) => running.setup.instances[Math.floor(i * step)]!);
      const plans = await Promise.all(chosen.map((instance) => planFor(running.setup.config, instance)));
      progress(`scale: storm of ${guests} guests at ${running.count}`);
      const statesBefore = instancesByState(await admin(running, "/metrics"));
      const { sample } = await measure(running.server!, plans, "close", { timeoutMs: 60_000, boundMs: 300_000 });
      const over = performance.now();
      let statesAfter = instancesByState(await admin(running, "/metrics"));
      const counted = () => (statesBefore.get("registered") ?? 0) - (statesAfter.get("registered") ?? 0) === guests;
      running.row.stormCountedAfterMs = 0;
      while (!counted()) {
        if (performance.now() - over > 10_000) {
          running.row.stormCountedAfterMs = null;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        running.row.stormCountedAfterMs = round(performance.now() - over, 0);
        statesAfter = instancesByState(await admin(running, "/metrics"));
      }
      running.row.statesBefore = Object.fromEntries(statesBefore);
      running.row.statesAfter = Object.fromEntries(statesAfter);
      const sorted = Float64Array.from(sample.latencies).sort();
      running.row.storm = {
        guests,
        requests: sample.requests,
        errors: sample.errors,
        p50Ms: round(sorted[Math.floor(sorted.length * 0.5)] ?? NaN, 1),
        p99Ms: round(sorted[Math.floor(sorted.length * 0.99)] ?? NaN, 1),
      };
      await settle(running.server!);
      running.row.afterStorm = await running.server!.memory();
    }
    progress("scale: 15 s quiet");
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    for (const running of all) running.row.afterQuiet = await running.server!.memory();
    const base = all[0]!;
    const perAdded = (running: Running, rss: number, baseRss: number) =>
      running === base ? 0 : round(((rss - baseRss) * 1024) / (running.count - base.count), 2);
    for (const running of all) {
      const { afterStorm, afterQuiet } = running.row;
      running.row.rssPerInstanceKiB = round((afterStorm!.rssMiB * 1024) / running.count, 1);
      running.row.rssPerAddedInstanceKiB = perAdded(running, afterStorm!.rssMiB, base.row.afterStorm!.rssMiB);
      running.row.quietPerAddedInstanceKiB = perAdded(running, afterQuiet!.rssMiB, base.row.afterQuiet!.rssMiB);
    }
    for (const running of all) {
      inTime(`the removals at ${running.count}`);
      const uuids = running.setup.instances.slice(0, removals).map((instance) => instance.uuid);
      progress(`scale: ${uuids.length} removals in batches of ${GC_BATCH} at ${running.count}`);
      const before = total(instancesByState(await admin(running, "/metrics")));
      const store = adminStore({ configFile: running.setup.configFile });
      const started = performance.now();
      for (let first = 0; first < uuids.length; first += GC_BATCH) {
        await store.deleteMany!(uuids.slice(first, first + GC_BATCH));
      }
      running.row.removed = uuids.length;
      running.row.removeMsPerInstance = round((performance.now() - started) / Math.max(1, uuids.length));
      running.row.metricsCountedRemovals =
        total(instancesByState(await admin(running, "/metrics"))) === before - uuids.length;
    }
    return all.map((running) => running.row as ScaleRow);
  } finally {
    for (const running of all) {
      await running.server?.stop();
      await running.setup.remove();
    }
  }
}

/** The rows as a plain table. */
export function formatScale(rows: ScaleRow[]): string {
  const header = [
    "instances",
    "register ms first/2nd/last 1000",
    "last/first",
    "listeners up ms",
    "settled s",
    "/metrics ms",
    "list page ms",
    "HTTP upload ms (×first)",
    "storm p50/p99 ms, errors",
    "RSS idle/storm/quiet MiB",
    "KiB/instance (/added; quiet)",
    "scrape counts uploads / storm / removals",
    "removal ms/instance",
  ];
  const lines = rows.map((row) => [
    String(row.instances),
    row.register ? `${row.register.firstMs} / ${row.register.secondMs} / ${row.register.lastMs}` : "-",
    row.register ? `${row.register.ratio} (/2nd ${row.register.ratioSecond})` : "-",
    String(row.listenersUpMs),
    String(row.settledSeconds),
    String(row.scrapeMs),
    String(row.listPageMs),
    `${row.httpUploadMs} (${row.httpUploadRatio})`,
    `${row.storm.p50Ms} / ${row.storm.p99Ms}, ${row.storm.errors}`,
    `${row.idle.rssMiB} / ${row.afterStorm.rssMiB} / ${row.afterQuiet.rssMiB}`,
    `${row.rssPerInstanceKiB} (${row.rssPerAddedInstanceKiB}; ${row.quietPerAddedInstanceKiB})`,
    `${row.metricsCountedUploads ? "next scrape" : "NO"} / ${
      row.stormCountedAfterMs === null
        ? "NO"
        : row.stormCountedAfterMs === 0
        ? "next scrape"
        : `${row.stormCountedAfterMs} ms`
    } / ${row.metricsCountedRemovals ? "next scrape" : "NO"}`,
    `${row.removeMsPerInstance} (${row.removed})`,
  ]);
  const table = [header, ...lines];
  const widths = header.map((_, column) => Math.max(...table.map((line) => line[column]!.length)));
  return table.map((line) => line.map((cell, column) => cell.padStart(widths[column]!)).join("  ")).join("\n");
}

async function main(args: string[]): Promise<void> {
  const options: ScaleOptions = { progress: (line) => console.error(line) };
  const counts: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (name: string) => {
      const number = Number(args[++i]);
      if (!Number.isInteger(number) || number < 1) throw new RangeError(`--${name} needs a positive whole number`);
      return number;
    };
    if (arg === "--storm") options.storm = value("storm");
    else if (arg === "--uploads") options.uploads = value("uploads");
    else if (arg === "--scrapes") options.scrapes = value("scrapes");
    else if (arg === "--removals") options.removals = value("removals");
    else if (arg === "--bound-minutes") options.boundMinutes = value("bound-minutes");
    else if (/^\d+$/.test(arg) && Number(arg) > 0) counts.push(Number(arg));
    else throw new TypeError(`unknown argument "${arg}"`);
  }
  if (counts.length > 0) options.counts = counts;
  const rows = await runScale(options);
  console.log(formatScale(rows));
  console.log(JSON.stringify(rows));
}

if (import.meta.main) await main(Deno.args);
