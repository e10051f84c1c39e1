#!/usr/bin/env -S deno run -P=bench
/**
 * The boot storm: N registered instances boot at once and each runs
 * cloud-init's whole EC2 sequence against mdserver; the same request
 * sequence runs against the ceiling (bench/ceiling_server.ts, a `Deno.serve`
 * answering a constant). Both servers are separate processes, so their CPU
 * time per request is read from /proc/<pid>/stat. Ceiling and mdserver
 * alternate, `rounds` times each, every mdserver round with instances that
 * have not booted yet.
 *
 * In the same run, rendering: every guest asks for its user-data, then for a
 * static leaf (`meta-data/instance-id`), `repeats` times each, through the
 * server with the same generator; once with a new connection per request (as
 * cloud-init) and once over kept-alive connections (the handler's own cost).
 * Each user-data request renders its template: there is no output cache.
 *
 *   deno run -P=bench bench/boot_storm.ts [--instances 500] [--rounds 2] [--connection close|keep-alive]
 *
 * Prints a table and one line of JSON. bench/main.ts runs it with the rest.
 *
 * @module
 */

import { join } from "node:path";
import { type Config, loadConfig } from "../src/config/mod.ts";
import type { Instance } from "../src/store/instance.ts";
import { ec2MetadataTree } from "../src/guest_api/metadata/ec2.ts";
import { lookupPath } from "../src/guest_api/metadata/tree.ts";
import { registerDomainXml } from "../src/store/registration.ts";
import { createStore } from "../src/service/service.ts";
import { openBackend } from "../src/store/open.ts";
import { buildTemplateData } from "../src/guest_api/template_data.ts";
import { TemplateRenderer } from "../src/user_data/mod.ts";
import {
  cloudInitEc2Paths,
  type GuestPlan,
  type LoadResult,
  type LoadSample,
  runLoad,
  summarize,
} from "./load_generator.ts";
import { type ProcessMemory, PROJECT_DIR, type ServerProcess, startCeiling, startMdserver } from "./server_process.ts";
import { domainXml } from "./upload_scaling.ts";

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

/** Results of the boot storm and the rendering comparison. */
export interface BootStormResult {
  benchmark: "boot_storm";
  instances: number;
  rounds: number;
  warmupInstances: number;
  connection: Connection;
  requestsPerBoot: number;
  /** Whether cloud-init's crawl of mdserver over HTTP gave exactly the planned sequence. */
  planVerified: boolean;
  mdserver: ServerRun;
  ceiling: ServerRun;
  cpuRatio: number;
  p99Ratio: number;
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
  connection?: Connection;
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

/** A temporary mdserver setup: configuration, userdata, a KV file with instances. */
export interface BenchSetup {
  dir: string;
  configFile: string;
  config: Config;
  /** Registered instances in registration (address) order. */
  instances: Instance[];
  registerSeconds: number;
  remove(): Promise<void>;
}

/** The SSH key every bench configuration gives its instances (not a real key). */
export const PUBLIC_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkKeyOnlyNotARealKeyxxxxxxxxxxxxxx bench@mdserver";

/**
 * Writes a configuration (pool 127.90.0.0/16 on loopback, the sample
 * md_server template config/userdata/base.yaml as default_template, dnsmasq
 * not managed) and registers `count` domains into its KV file through the
 * real upload path, before any server starts.
 */
export async function prepareSetup(count: number, storeIni = ""): Promise<BenchSetup> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-bench-storm-" });
  try {
    await Deno.mkdir(join(dir, "userdata"));
    await Deno.copyFile(join(PROJECT_DIR, "config/userdata/base.yaml"), join(dir, "userdata/base.yaml"));
    const configFile = join(dir, "mdserver.conf");
    await Deno.writeTextFile(
      configFile,
      `[mdserver]
listen_address = 127.0.0.1
port = 0
userdata_dir = userdata
default_template = ${join(dir, "userdata/base.yaml")}
kv_file = mdserver.kv

[admin]
socket = ${join(dir, "run", "admin.sock")}

[public-keys]
default = ${PUBLIC_KEY}

[dnsmasq]
net_address = 127.90.0.0
net_prefix = 16
gateway = 127.90.0.1
interface = lo
base_dir = dnsmasq
run_dir = run
domain = bench.test
manage = no

[service]
location = bench
${storeIni}`,
    );
    const config = await loadConfig(configFile);
    const kv = await openBackend(config);
    const instances: Instance[] = [];
    const started = performance.now();
    try {
      const store = createStore(kv, config);
      for (let index = 0; index < count; index++) {
        instances.push((await registerDomainXml(domainXml(index), { store, config })).instance);
      }
    } finally {
      kv.close();
    }
    const registerSeconds = Math.round(performance.now() - started) / 1000;
    return {
      dir,
      configFile,
      config,
      instances,
      registerSeconds,
      remove: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/** The cloud-init request sequence of an instance, crawled from its meta-data tree in memory. */
export async function planFor(config: Config, instance: Instance): Promise<GuestPlan> {
  const tree = ec2MetadataTree(config, instance);
  const paths = await cloudInitEc2Paths((path) => {
    const match = /^\/[^/]+\/meta-data(\/.*)?$/.exec(path);
    if (!match) return Promise.resolve(null);
    const found = lookupPath(tree, match[1] ?? "");
    return Promise.resolve(found.kind === "missing" ? null : found.body);
  });
  return { address: instance.ipv4, paths };
}

/** cloud-init's sequence for one guest, crawled over HTTP from the server. */
export async function crawlOverHttp(baseUrl: string, address: string): Promise<string[]> {
  const client = Deno.createHttpClient({ localAddress: address });
  try {
    return await cloudInitEc2Paths(async (path) => {
      const response = await fetch(`${baseUrl}${path}`, { client });
      const body = await response.text();
      return response.status === 200 ? body : null;
    });
  } finally {
    client.close();
  }
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
  const connection = options.connection ?? "close";
  const repeats = options.renderRepeats ?? 10;
  const renderRounds = options.renderRounds ?? 4;
  const progress = options.progress ?? (() => {});

  progress(`boot storm: registering ${warmupCount + rounds * count} instances`);
  const setup = await prepareSetup(warmupCount + rounds * count, options.storeIni);
  let mdserver: ServerProcess | null = null;
  let ceiling: ServerProcess | null = null;
  try {
    const plans = await Promise.all(setup.instances.map((instance) => planFor(setup.config, instance)));
    const warmup = plans.slice(0, warmupCount);
    const storms = Array.from(
      { length: rounds },
      (_, round) => plans.slice(warmupCount + round * count, warmupCount + (round + 1) * count),
    );
    [mdserver, ceiling] = await Promise.all([
      startMdserver(setup.configFile, options.mdserverFlags ?? []),
      startCeiling(),
    ]);

    const crawled = await crawlOverHttp(mdserver.url, warmup[0]!.address);
    const planVerified = JSON.stringify(crawled) === JSON.stringify(warmup[0]!.paths);

    progress(`boot storm: warm-up with ${warmupCount} instances`);
    await measure(ceiling, warmup, connection);
    await measure(mdserver, warmup, connection);

    const ceilingRuns: Measured[] = [];
    const mdserverRuns: Measured[] = [];
    for (const [round, guests] of storms.entries()) {
      progress(
        `boot storm ${round + 1}/${rounds}: ${count} instances × ${
          guests[0]!.paths.length
        } requests, ceiling then mdserver`,
      );
      ceilingRuns.push(await measure(ceiling, guests, connection));
      mdserverRuns.push(await measure(mdserver, guests, connection));
    }
    const mdserverRun = serverRun(mdserverRuns);
    const ceilingRun = serverRun(ceilingRuns);
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
      connection,
      requestsPerBoot: storms[0]![0]!.paths.length,
      planVerified,
      mdserver: mdserverRun,
      ceiling: ceilingRun,
      cpuRatio: ratio(mdserverRun.cpuPerRequestUs, ceilingRun.cpuPerRequestUs),
      p99Ratio: ratio(mdserverRun.p99Ms, ceilingRun.p99Ms),
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
  const rows = [
    ["run", ...RUN_COLUMNS],
    ["storm: mdserver", ...runCells(result.mdserver)],
    ["storm: ceiling", ...runCells(result.ceiling)],
  ];
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
  const connection = arg("connection") ?? "close";
  if (connection !== "close" && connection !== "keep-alive") {
    throw new TypeError(`--connection must be "close" or "keep-alive", not "${connection}"`);
  }
  const result = await runBootStorm({ instances, rounds, connection, progress: (line) => console.error(line) });
  console.log(formatTable(stormRows(result)));
  console.log(
    `storm CPU ratio ${result.cpuRatio}, p99 ratio ${result.p99Ratio}; rendering CPU ratio ${
      result.rendering.runs.map((run) => `${run.cpuRatio} (${run.connection})`).join(", ")
    }`,
  );
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
