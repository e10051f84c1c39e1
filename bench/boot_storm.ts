#!/usr/bin/env -S deno run -P=bench
/**
 * The boot storm: N registered instances boot at once and each runs
 * cloud-init's whole EC2 sequence against mdserver; the same request
 * sequence runs against the ceiling (bench/ceiling_server.ts, a `Deno.serve`
 * answering a constant). Both servers are separate processes, so their CPU
 * time per request is read from /proc/<pid>/stat. Ceiling and mdserver
 * alternate, `rounds` times each, every mdserver round with instances that
 * have not booted yet. Before its storm each round's guests are uploaded for
 * their start through the admin socket, as libvirt's hook does at `virsh
 * start` (mdserver prepares their answers then); that CPU is reported beside
 * the storm, not in it. The storm begins once the store's address cache no
 * longer trusts what it read at the uploads (10 s), as real guests ask
 * 20–40 s after their start: each boot's token request reads its record again.
 *
 * In the same run, rendering: every guest asks for its user-data, then for a
 * static leaf (`meta-data/instance-id`), `repeats` times each, through the
 * server with the same generator; once with a new connection per request (as
 * cloud-init) and once over kept-alive connections (the handler's own cost).
 * User-data and meta-data are answered from what mdserver prepared for
 * the guest (src/http/answer_ahead.ts): each guest's first user-data request
 * renders its template, later ones cost two stats and a lookup.
 *
 *   deno run -P=bench bench/boot_storm.ts [--instances 500] [--rounds 2] [--connection close|keep-alive]
 *
 * Without --connection the storm runs over both kinds of connection (fresh
 * instances for each), each beside its own ceiling.
 *
 * Prints a table and one line of JSON. bench/main.ts runs it with the rest.
 *
 * @module
 */

import { buildTemplateData } from "../src/guest_api/template_data.ts";
import { TemplateRenderer } from "../src/user_data/mod.ts";
import { type GuestPlan, type LoadResult, type LoadSample, runLoad, summarize } from "./load_generator.ts";
import { type ProcessMemory, type ServerProcess, startCeiling, startMdserver } from "./server_process.ts";
import { type BenchSetup, crawlOverHttp, planFor, prepareSetup } from "./storm_setup.ts";
import { ADDRESS_CACHE_TTL_MS } from "../src/store/mod.ts";
import { domainXml } from "./upload_scaling.ts";

export { type BenchSetup, crawlOverHttp, planFor, prepareSetup, PUBLIC_KEY } from "./storm_setup.ts";

/** How requests are sent: a connection per request (cloud-init) or kept alive. */
export type Connection = "close" | "keep-alive";

/** Load runs on one server, with the server's CPU time. */
export interface ServerRun extends LoadResult {
  /** Server CPU time (user + system) per request, microseconds. */
  cpuPerRequestUs: number;
  /** Server CPU seconds during the runs. */
  cpuSeconds: number;
  /** Log lines the server wrote during the runs (mdserver: one per request). */
  logLines: number;
}

/** One measured load run, before runs are added up. */
export interface Measured {
  sample: LoadSample;
  cpuSeconds: number;
  logLines: number;
}

/** User-data against a static leaf over one kind of connection. */
export interface RenderingRun {
  connection: Connection;
  userData: ServerRun;
  staticLeaf: ServerRun;
  cpuRatio: number;
  p99Ratio: number;
}

/** The storms of one kind of connection: mdserver beside the ceiling. */
export interface StormRun {
  connection: Connection;
  mdserver: ServerRun;
  ceiling: ServerRun;
  cpuRatio: number;
  p99Ratio: number;
  /**
   * The storm's guests uploaded for their start before it, as the hook does
   * at `virsh start` (outside the storm's CPU): mdserver's CPU for them,
   * which includes preparing each guest's answers and user-data.
   */
  startUploads: { guests: number; cpuSeconds: number; cpuPerGuestUs: number; errors: number };
}

/** Beyond the address cache's time to live, the wait from the uploads to the guests' first requests. */
const BOOT_MARGIN_MS = 500;

/** Guests' domains uploaded at once by `uploadStarts`, as hooks of concurrent `virsh start`s. */
const UPLOAD_CONCURRENCY = 8;

/**
 * Uploads each guest's domain for its start through mdserver's admin
 * socket, as the hook does at `virsh start`, and reads mdserver's CPU time
 * around them (idle to idle, so the answers prepared after each upload count).
 */
export async function uploadStarts(
  server: ServerProcess,
  adminSocket: string,
  indexes: number[],
): Promise<{ cpuSeconds: number; errors: number }> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: adminSocket } });
  try {
    const cpuBefore = await settle(server);
    let next = 0;
    let errors = 0;
    const worker = async () => {
      while (next < indexes.length) {
        const index = indexes[next++]!;
        const response = await fetch("http://mdserver/v1/instances", {
          method: "POST",
          body: domainXml(index),
          client,
        });
        await response.body?.cancel();
        if (!response.ok) errors++;
      }
    };
    await Promise.all(Array.from({ length: UPLOAD_CONCURRENCY }, worker));
    return { cpuSeconds: (await settle(server)) - cpuBefore, errors };
  } finally {
    client.close();
  }
}

/** Results of the boot storm and the rendering comparison. */
export interface BootStormResult {
  benchmark: "boot_storm";
  instances: number;
  rounds: number;
  warmupInstances: number;
  /** The first kind of connection stormed (its run is also `mdserver`, `ceiling`, `cpuRatio`, `p99Ratio`). */
  connection: Connection;
  requestsPerBoot: number;
  /** Whether cloud-init's crawl of mdserver over HTTP gave exactly the planned sequence. */
  planVerified: boolean;
  mdserver: ServerRun;
  ceiling: ServerRun;
  cpuRatio: number;
  p99Ratio: number;
  /** One storm run per kind of connection, each with its ceiling. */
  storms: StormRun[];
  rendering: {
    repeats: number;
    rounds: number;
    runs: RenderingRun[];
    /** TemplateRenderer.renderUserData alone, in this process, µs per call (the same template). */
    inProcess: InProcessRender;
  };
  memory: { mdserver: ProcessMemory; ceiling: ProcessMemory };
  /** Warnings and errors mdserver logged (first 20). */
  mdserverProblems: string[];
}

/** Options of the boot storm. */
export interface BootStormOptions {
  instances?: number;
  /** Storms per server, alternating; default 2. */
  rounds?: number;
  /** Instances that boot once before the measured storms (JIT warm-up), default 10% of instances, at least 20. */
  warmup?: number;
  /** The kinds of connection stormed, each with fresh instances; default both, a new connection per request first. */
  connections?: Connection[];
  /** Requests per guest in each rendering run; default 10. */
  renderRepeats?: number;
  /** Rendering runs per kind and connection, alternating leaf and user-data; default 4. */
  renderRounds?: number;
  /** Flags for mdserver's `deno run`, e.g. `--cpu-prof` to profile it. */
  mdserverFlags?: string[];
  /** A `[store]` section for the configuration (etcd); default the KV file. */
  storeIni?: string;
  /** Progress lines. */
  progress?: (line: string) => void;
}

/**
 * Waits until a server has finished the work a load left behind (mdserver
 * writes boot-tracking records in the background): its CPU time stays the
 * same for 200 ms, or 10 s have passed. Returns its CPU seconds then.
 */
export async function settle(server: ServerProcess): Promise<number> {
  let last = await server.cpuSeconds();
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = await server.cpuSeconds();
    if (now === last) return now;
    last = now;
  }
  return last;
}

/**
 * Runs a load against a server and reads its CPU time around it, from an
 * idle server to an idle server, so that work done in the background for
 * these requests counts, and no other. A request unanswered after
 * `timeoutMs` counts as an error; after `boundMs` no more are sent.
 */
export async function measure(
  server: ServerProcess,
  guests: GuestPlan[],
  connection: Connection,
  limits: { timeoutMs?: number; boundMs?: number } = {},
): Promise<Measured> {
  const cpuBefore = await settle(server);
  const linesBefore = server.logLines();
  const sample = await runLoad({ baseUrl: server.url, guests, connection, ...limits });
  const cpuSeconds = (await settle(server)) - cpuBefore;
  return { sample, cpuSeconds, logLines: server.logLines() - linesBefore };
}

/** Adds measured runs of the same kind up. */
export function serverRun(runs: Measured[]): ServerRun {
  const load = summarize(runs.map((run) => run.sample));
  const cpuSeconds = runs.reduce((sum, run) => sum + run.cpuSeconds, 0);
  return {
    ...load,
    cpuSeconds: Math.round(cpuSeconds * 100) / 100,
    cpuPerRequestUs: Math.round((cpuSeconds / Math.max(1, load.requests)) * 1e6),
    logLines: runs.reduce((sum, run) => sum + run.logLines, 0),
  };
}

function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}

/** One render of the bench template in this process, µs. */
export interface InProcessRender {
  /** A document this renderer checked before (a guest asking again): lookup, stat, run. */
  repeatUs: number;
  /** A document never seen: the same plus its #cloud-config check (a YAML parse). */
  newDocumentUs: number;
}

/** How long one render of the bench template takes in this process. */
async function inProcessRender(setup: BenchSetup): Promise<InProcessRender> {
  const { config } = setup;
  const renderer = new TemplateRenderer({
    userdataDir: config.mdserver.userdataDir,
    suffixes: config.mdserver.userdataSuffixes,
    defaultTemplate: config.mdserver.defaultTemplate,
  });
  const instances = setup.instances.slice(0, 100);
  let serial = 0;
  // A new instance_id makes a document the renderer has never checked.
  const render = async (i: number, fresh: boolean) => {
    const instance = instances[i % instances.length]!;
    const data = buildTemplateData(config, instance);
    if (fresh) data.instance_id = `i-bench${serial++}`;
    await renderer.renderUserData({ prefix: null, name: instance.name, mac: instance.mac }, data);
  };
  const timeUs = async (fresh: boolean) => {
    for (let i = 0; i < 2000; i++) await render(i, fresh);
    const count = 10_000;
    const started = performance.now();
    for (let i = 0; i < count; i++) await render(i, fresh);
    return Math.round(((performance.now() - started) / count) * 1000 * 10) / 10;
  };
  return { repeatUs: await timeUs(false), newDocumentUs: await timeUs(true) };
}

/** Runs the boot storm and the rendering comparison. */
export async function runBootStorm(options: BootStormOptions = {}): Promise<BootStormResult> {
  const count = options.instances ?? 500;
  const rounds = options.rounds ?? 2;
  const warmupCount = options.warmup ?? Math.max(20, Math.round(count / 10));
  const connections = options.connections ?? ["close", "keep-alive"];
  const repeats = options.renderRepeats ?? 10;
  const renderRounds = options.renderRounds ?? 4;
  const progress = options.progress ?? (() => {});

  const stormed = rounds * connections.length;
  progress(`boot storm: registering ${warmupCount + stormed * count} instances`);
  const setup = await prepareSetup(warmupCount + stormed * count, options.storeIni);
  let mdserver: ServerProcess | null = null;
  let ceiling: ServerProcess | null = null;
  try {
    const plans = await Promise.all(setup.instances.map((instance) => planFor(setup.config, instance)));
    const warmup = plans.slice(0, warmupCount);
    const storms = Array.from(
      { length: stormed },
      (_, round) => plans.slice(warmupCount + round * count, warmupCount + (round + 1) * count),
    );
    [mdserver, ceiling] = await Promise.all([
      startMdserver(setup.configFile, options.mdserverFlags ?? []),
      startCeiling(),
    ]);

    const crawled = await crawlOverHttp(mdserver.url, warmup[0]!.address);
    const planVerified = JSON.stringify(crawled) === JSON.stringify(warmup[0]!.paths);

    progress(`boot storm: warm-up with ${warmupCount} instances`);
    for (const connection of connections) {
      await measure(ceiling, warmup, connection);
      await measure(mdserver, warmup, connection);
    }

    // Round by round, each kind of connection in turn, the ceiling then mdserver, fresh guests every time.
    const measured = connections.map(() => ({
      ceiling: [] as Measured[],
      mdserver: [] as Measured[],
      uploads: { guests: 0, cpuSeconds: 0, errors: 0 },
    }));
    const adminSocket = setup.config.admin.socket!;
    for (let round = 0; round < rounds; round++) {
      for (const [index, connection] of connections.entries()) {
        const stormIndex = round * connections.length + index;
        const guests = storms[stormIndex]!;
        // Their starts, as libvirt's hook uploads them, before the guests boot.
        const first = warmupCount + stormIndex * count;
        const uploads = await uploadStarts(mdserver, adminSocket, guests.map((_, i) => first + i));
        measured[index]!.uploads.guests += guests.length;
        measured[index]!.uploads.cpuSeconds += uploads.cpuSeconds;
        measured[index]!.uploads.errors += uploads.errors;
        const uploaded = performance.now();
        progress(
          `boot storm ${round + 1}/${rounds} (${connection}): ${count} instances × ${
            guests[0]!.paths.length
          } requests, ceiling then mdserver`,
        );
        // A guest asks seconds after its start's upload, later than the store trusts the record it read then;
        // both servers wait alike.
        const bootsAt = uploaded + ADDRESS_CACHE_TTL_MS + BOOT_MARGIN_MS;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, bootsAt - performance.now())));
        measured[index]!.ceiling.push(await measure(ceiling, guests, connection));
        measured[index]!.mdserver.push(await measure(mdserver, guests, connection));
      }
    }
    const stormRuns: StormRun[] = connections.map((connection, index) => {
      const uploads = measured[index]!.uploads;
      const mdserverRun = serverRun(measured[index]!.mdserver);
      const ceilingRun = serverRun(measured[index]!.ceiling);
      return {
        connection,
        mdserver: mdserverRun,
        ceiling: ceilingRun,
        cpuRatio: ratio(mdserverRun.cpuPerRequestUs, ceilingRun.cpuPerRequestUs),
        p99Ratio: ratio(mdserverRun.p99Ms, ceilingRun.p99Ms),
        startUploads: {
          guests: uploads.guests,
          cpuSeconds: Math.round(uploads.cpuSeconds * 100) / 100,
          cpuPerGuestUs: Math.round((uploads.cpuSeconds / Math.max(1, uploads.guests)) * 1e6),
          errors: uploads.errors,
        },
      };
    });
    const memory = { mdserver: await mdserver.memory(), ceiling: await ceiling.memory() };

    // Rendering: the guests of the first storm, each asking one path
    // `repeats` times, alternated so that a drift in machine load hits both alike.
    const only = (path: string) =>
      storms[0]!.map((guest) => ({ address: guest.address, paths: Array(repeats).fill(path) as string[] }));
    const leafGuests = only("/2021-03-23/meta-data/instance-id");
    const userDataGuests = only("/2021-03-23/user-data");
    const runs: RenderingRun[] = [];
    for (const mode of ["close", "keep-alive"] as const) {
      progress(
        `rendering (${mode}): ${count} instances × ${repeats} requests, static leaf and user-data, ${renderRounds} times`,
      );
      const leaf: Measured[] = [];
      const userData: Measured[] = [];
      for (let round = 0; round < renderRounds; round++) {
        leaf.push(await measure(mdserver, leafGuests, mode));
        userData.push(await measure(mdserver, userDataGuests, mode));
      }
      const leafRun = serverRun(leaf);
      const userDataRun = serverRun(userData);
      runs.push({
        connection: mode,
        userData: userDataRun,
        staticLeaf: leafRun,
        cpuRatio: ratio(userDataRun.cpuPerRequestUs, leafRun.cpuPerRequestUs),
        p99Ratio: ratio(userDataRun.p99Ms, leafRun.p99Ms),
      });
    }

    return {
      benchmark: "boot_storm",
      instances: count,
      rounds,
      warmupInstances: warmupCount,
      connection: connections[0]!,
      requestsPerBoot: storms[0]![0]!.paths.length,
      planVerified,
      mdserver: stormRuns[0]!.mdserver,
      ceiling: stormRuns[0]!.ceiling,
      cpuRatio: stormRuns[0]!.cpuRatio,
      p99Ratio: stormRuns[0]!.p99Ratio,
      storms: stormRuns,
      rendering: { repeats, rounds: renderRounds, runs, inProcess: await inProcessRender(setup) },
      memory,
      mdserverProblems: mdserver.problems(),
    };
  } finally {
    await Promise.all([mdserver?.stop(), ceiling?.stop()]);
    await setup.remove();
  }
}

/** A table row of a server run: requests, req/s, p50, p99, errors, CPU per request. */
export function runCells(run: ServerRun): string[] {
  return [
    String(run.requests),
    String(run.requestsPerSecond),
    run.p50Ms.toFixed(1),
    run.p99Ms.toFixed(1),
    String(run.errors),
    String(run.cpuPerRequestUs),
  ];
}

/** The column names that go with runCells. */
export const RUN_COLUMNS = ["requests", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req"];

/** Table rows of a storm result, header first. */
export function stormRows(result: BootStormResult): string[][] {
  const rows = [["run", ...RUN_COLUMNS]];
  for (const storm of result.storms) {
    rows.push([`storm (${storm.connection}): mdserver`, ...runCells(storm.mdserver)]);
    rows.push([`storm (${storm.connection}): ceiling`, ...runCells(storm.ceiling)]);
    const uploads = storm.startUploads;
    rows.push([
      `  before it: ${uploads.guests} start uploads, CPU µs/guest`,
      "",
      "",
      "",
      "",
      String(uploads.errors),
      String(uploads.cpuPerGuestUs),
    ]);
  }
  for (const run of result.rendering.runs) {
    rows.push([`render (${run.connection}): user-data`, ...runCells(run.userData)]);
    rows.push([`render (${run.connection}): static leaf`, ...runCells(run.staticLeaf)]);
  }
  return rows;
}

/** Pads rows into aligned columns. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n");
}

async function main(): Promise<void> {
  const arg = (name: string) => {
    const index = Deno.args.indexOf(`--${name}`);
    return index >= 0 ? Deno.args[index + 1] : undefined;
  };
  const instances = Number(arg("instances") ?? "500");
  const rounds = Number(arg("rounds") ?? "2");
  for (const [name, value] of [["instances", instances], ["rounds", rounds]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} needs a positive whole number`);
  }
  const connection = arg("connection");
  if (connection !== undefined && connection !== "close" && connection !== "keep-alive") {
    throw new TypeError(`--connection must be "close" or "keep-alive", not "${connection}"`);
  }
  const connections = connection === undefined ? undefined : [connection as Connection];
  const result = await runBootStorm({
    instances,
    rounds,
    ...(connections ? { connections } : {}),
    progress: (line) => console.error(line),
  });
  console.log(formatTable(stormRows(result)));
  console.log(
    `storm CPU ratio ${result.storms.map((storm) => `${storm.cpuRatio} (${storm.connection})`).join(", ")}, p99 ratio ${
      result.storms.map((storm) => `${storm.p99Ratio} (${storm.connection})`).join(", ")
    }; ` +
      `rendering CPU ratio ${result.rendering.runs.map((run) => `${run.cpuRatio} (${run.connection})`).join(", ")}`,
  );
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
