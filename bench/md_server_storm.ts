#!/usr/bin/env -S deno run -P=bench
/**
 * mdserver beside md_server 0.6.x (the Python service it replaces) and the
 * ceiling (bench/ceiling_server.ts), in one run, from empty databases:
 *
 * 1. upload: the same domain XML, one domain after another, `POST
 *    /instance-upload` to mdserver and then to md_server over a new
 *    connection each (as libvirt's hook does), until both know
 *    warm-up + rounds × instances domains;
 * 2. the plan: cloud-init's EC2 sequence as mdserver serves it (the boot
 *    storm's plan, crawled over HTTP), each of its paths asked of md_server by
 *    the same guest; the storm sends the paths md_server answers (200), in
 *    the plan's order, and the result lists the others;
 * 3. the storm: ceiling, mdserver and md_server in turn, `rounds` times, every
 *    round with guests that have not booted before, each guest on its own
 *    loopback source address (the one each server allocated to that domain),
 *    server CPU per request from /proc/<pid>/stat;
 * 4. per path: each served path alone, from the three servers, by 4 guests at a
 *    time (within md_server's listen backlog of 5) 125 times each, to show
 *    where md_server's time goes.
 *
 * Around each run the kernel's count of connections refused at a full accept
 * queue (TcpExt ListenOverflows of /proc/net/netstat, counted for the whole
 * network namespace) is read: md_server listens with bottle's default server,
 * whose backlog is 5, and a guest whose SYN is dropped tries again after 1 s,
 * then 2, 4, 8 s. A request unanswered after 50 s (cloud-init's EC2
 * `url_timeout`) counts as an error, and no guest sends another request
 * once a run has lasted 120 s (cloud-init's `url_max_wait`): those are
 * counted as unsent, so a run ends within 170 s.
 *
 *   deno run -P=bench bench/md_server_storm.ts --md-server /tmp/md_server [--instances 500] [--rounds 2]
 *     [--connection close|keep-alive]
 *
 * md_server answers with HTTP/1.0 and closes every connection, so over
 * `keep-alive` its guests still connect once per request.
 *
 * @module
 */

import { resolve } from "node:path";
import {
  type Connection,
  crawlOverHttp,
  formatTable,
  measure,
  type Measured,
  prepareSetup,
  PUBLIC_KEY,
  RUN_COLUMNS,
  runCells,
  type ServerRun,
  serverRun,
  settle,
} from "./boot_storm.ts";
import type { GuestPlan } from "./load_generator.ts";
import {
  inspectMdServer,
  MD_SERVER_EC2_VERSIONS,
  mdServerAddresses,
  prepareMdServer,
  startMdServer,
} from "./md_server_process.ts";
import { type ProcessMemory, readProcFile, type ServerProcess, startCeiling, startMdserver } from "./server_process.ts";
import { domainXml } from "./upload_scaling.ts";

/** A request md_server could not answer as mdserver does, with the status it gave. */
export interface UnservedPath {
  path: string;
  status: number;
}

/** One server's uploads. */
export interface UploadSide {
  uploads: number;
  errors: number;
  firstError: string | null;
  /** Mean wall time of an upload, ms: the first and the last `window`. */
  firstMeanMs: number;
  lastMeanMs: number;
  /** lastMeanMs / firstMeanMs. */
  ratio: number;
  p99Ms: number;
  /** Server CPU per upload over the whole phase, ms. */
  cpuPerUploadMs: number;
}

/** Both servers' uploads, interleaved domain by domain. */
export interface UploadPhase {
  count: number;
  window: number;
  mdserver: UploadSide;
  md_server: UploadSide;
}

/** One served path alone: server CPU per request, µs, on each server. */
export interface PathCost {
  path: string;
  ceilingUs: number;
  mdserverUs: number;
  mdServerUs: number;
  errors: number;
}

/** A server's runs, with the connections the kernel dropped at its full accept queue meanwhile. */
export interface ComparedRun extends ServerRun {
  listenOverflows: number;
}

/** Everything the comparison measured. */
export interface MdServerComparison {
  benchmark: "md_server";
  /** md_server's version and where it ran from. */
  version: string;
  checkout: string;
  ec2Versions: string;
  instances: number;
  rounds: number;
  warmupInstances: number;
  connection: Connection;
  /** A request's time limit and a run's bound for sending, seconds. */
  timeoutSeconds: number;
  boundSeconds: number;
  /** Requests per boot in mdserver's plan (cloud-init's crawl of mdserver). */
  planRequests: number;
  /** The paths of that plan md_server answers, in order: what each guest sends in this storm. */
  served: string[];
  /** The paths of that plan md_server does not answer (404, or 500). */
  unserved: UnservedPath[];
  /** cloud-init's own crawl of md_server (the sequence a guest sends it), for reference. */
  mdServerCrawl: string[];
  upload: UploadPhase;
  ceiling: ComparedRun;
  mdserver: ComparedRun;
  md_server: ComparedRun;
  /** md_server's CPU per request over mdserver's, and p99 over p99. */
  cpuRatio: number;
  p99Ratio: number;
  perPath: PathCost[];
  memory: { mdserver: ProcessMemory; md_server: ProcessMemory };
  /** Warnings and errors md_server and mdserver wrote (first 20 each). */
  problems: { mdserver: string[]; md_server: string[] };
}

/** Options of the comparison. */
export interface MdServerComparisonOptions {
  /** A checkout of md_server 0.6.x (the folder holding `mdserver/`). */
  checkout: string;
  instances?: number;
  rounds?: number;
  /** Guests that boot once before the measured storms; default 10% of instances, at least 20. */
  warmup?: number;
  connection?: Connection;
  /** A request unanswered after this many ms is an error; default 50 s, cloud-init's EC2 `url_timeout`. */
  timeoutMs?: number;
  /**
   * No request is sent after this many ms of a run (counted as unsent); default 120 s, cloud-init's EC2
   * `url_max_wait`. With in-flight requests a run lasts at most boundMs + timeoutMs.
   */
  boundMs?: number;
  progress?: (line: string) => void;
}

const UPLOAD_TIMEOUT_MS = 30_000;

/** Guests at a time and requests each in the per-path runs: fewer guests than md_server's backlog. */
const PATH_GUESTS = 4;
const PATH_REPEATS = 125;

/** Connections refused so far because a listener's accept queue was full (this network namespace). */
export async function listenOverflows(): Promise<number> {
  const lines = (await readProcFile("/proc/net/netstat")).split("\n").filter((line) => line.startsWith("TcpExt:"));
  const names = lines[0]?.split(" ") ?? [];
  const values = lines[1]?.split(" ") ?? [];
  return Number(values[names.indexOf("ListenOverflows")] ?? NaN);
}

function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** One `POST /instance-upload` over a new connection; its wall time in ms, its status and body. */
async function upload(url: string, xml: string): Promise<{ ms: number; status: number; body: string }> {
  const started = performance.now();
  const response = await fetch(`${url}/instance-upload`, {
    method: "POST",
    body: xml,
    headers: { connection: "close", "content-type": "application/xml" },
    signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
  });
  const body = await response.text();
  return { ms: performance.now() - started, status: response.status, body };
}

function uploadSide(times: number[], errors: string[], cpuSeconds: number, window: number): UploadSide {
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
  const first = mean(times.slice(0, window));
  const last = mean(times.slice(-window));
  const sorted = [...times].sort((a, b) => a - b);
  return {
    uploads: times.length,
    errors: errors.length,
    firstError: errors[0] ?? null,
    firstMeanMs: round2(first),
    lastMeanMs: round2(last),
    ratio: ratio(last, first),
    p99Ms: round2(sorted[Math.max(0, Math.ceil(0.99 * sorted.length) - 1)] ?? 0),
    cpuPerUploadMs: round2((cpuSeconds * 1000) / Math.max(1, times.length)),
  };
}

/**
 * Uploads domains 0…count-1 to both servers, interleaved; returns the
 * measurements and mdserver's address of each domain (from its answers).
 */
async function uploadBoth(
  mdserver: ServerProcess,
  mdServer: ServerProcess,
  count: number,
): Promise<{ phase: UploadPhase; mdserverAddresses: Map<string, string> }> {
  const window = Math.max(1, Math.min(100, Math.floor(count / 3)));
  const times = { mdserver: [] as number[], md_server: [] as number[] };
  const errors = { mdserver: [] as string[], md_server: [] as string[] };
  const addresses = new Map<string, string>();
  const cpuBefore = { mdserver: await settle(mdserver), md_server: await settle(mdServer) };
  for (let index = 0; index < count; index++) {
    const xml = domainXml(index);
    for (const [name, server] of [["mdserver", mdserver], ["md_server", mdServer]] as const) {
      try {
        const result = await upload(server.url, xml);
        times[name].push(result.ms);
        if (result.status !== 200 && result.status !== 201) {
          errors[name].push(`bench-${index}: ${result.status} ${result.body.slice(0, 200)}`);
        } else if (name === "mdserver") {
          const summary = JSON.parse(result.body) as { name: string; ipv4: string };
          addresses.set(summary.name, summary.ipv4);
        }
      } catch (error) {
        errors[name].push(`bench-${index}: ${(error as Error).message}`);
      }
    }
  }
  const cpu = {
    mdserver: (await settle(mdserver)) - cpuBefore.mdserver,
    md_server: (await settle(mdServer)) - cpuBefore.md_server,
  };
  return {
    phase: {
      count,
      window,
      mdserver: uploadSide(times.mdserver, errors.mdserver, cpu.mdserver, window),
      md_server: uploadSide(times.md_server, errors.md_server, cpu.md_server, window),
    },
    mdserverAddresses: addresses,
  };
}

/** Asks md_server each path of the plan as one guest; splits them into answered and not. */
async function splitPlan(
  url: string,
  address: string,
  plan: string[],
): Promise<{ served: string[]; unserved: UnservedPath[] }> {
  const client = Deno.createHttpClient({ localAddress: address });
  const served: string[] = [];
  const unserved: UnservedPath[] = [];
  try {
    for (const path of plan) {
      const response = await fetch(`${url}${path}`, { client, signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS) });
      await response.arrayBuffer();
      if (response.status === 200) served.push(path);
      else unserved.push({ path, status: response.status });
    }
  } finally {
    client.close();
  }
  return { served, unserved };
}

/** Runs the comparison. */
export async function runMdServerComparison(options: MdServerComparisonOptions): Promise<MdServerComparison> {
  const count = options.instances ?? 500;
  const rounds = options.rounds ?? 2;
  const warmupCount = options.warmup ?? Math.max(20, Math.round(count / 10));
  const connection = options.connection ?? "close";
  const timeoutMs = options.timeoutMs ?? 50_000;
  const boundMs = options.boundMs ?? 120_000;
  const progress = options.progress ?? (() => {});
  const total = warmupCount + rounds * count;

  const checkout = await inspectMdServer(resolve(options.checkout));
  progress(`md_server ${checkout.version} from ${checkout.path}: starting it, mdserver and the ceiling`);
  const setup = await prepareSetup(0);
  const mdSetup = await prepareMdServer(checkout, PUBLIC_KEY);
  const servers: ServerProcess[] = [];
  try {
    const [mdserver, mdServer, ceiling] = await Promise.all([
      startMdserver(setup.configFile),
      startMdServer(checkout, mdSetup),
      startCeiling(),
    ]);
    servers.push(mdserver, mdServer, ceiling);

    progress(`md_server: uploading ${total} domains to mdserver and md_server, interleaved`);
    const { phase, mdserverAddresses } = await uploadBoth(mdserver, mdServer, total);
    const mdAddresses = await mdServerAddresses(mdSetup);
    const names = Array.from({ length: total }, (_, index) => `bench-${index}`);
    for (const name of names) {
      if (!mdserverAddresses.has(name) || !mdAddresses.has(name)) {
        throw new Error(
          `${name} has no address (mdserver ${mdserverAddresses.get(name)}, md_server ${
            mdAddresses.get(name)
          }); uploads: ${phase.mdserver.firstError ?? ""} ${phase.md_server.firstError ?? ""}`,
        );
      }
    }

    const plan = await crawlOverHttp(mdserver.url, mdserverAddresses.get(names[0]!)!);
    const { served, unserved } = await splitPlan(mdServer.url, mdAddresses.get(names[0]!)!, plan);
    // Every guest sends the same served paths: none may name the first guest.
    const own = [names[0]!, mdserverAddresses.get(names[0]!)!, "52:54:00:00:00:00"];
    const specific = served.find((path) => own.some((part) => path.includes(part)));
    if (specific) throw new Error(`a served path names the guest it was planned for: ${specific}`);
    if (served.length === 0) throw new Error("md_server answered none of the plan's paths");
    const mdServerCrawl = await crawlOverHttp(mdServer.url, mdAddresses.get(names[0]!)!);

    const guests = (server: "mdserver" | "md_server", from: number, to: number): GuestPlan[] =>
      names.slice(from, to).map((name) => ({
        address: (server === "mdserver" ? mdserverAddresses : mdAddresses).get(name)!,
        paths: served,
      }));
    const run = (server: ServerProcess, plans: GuestPlan[]) =>
      measure(server, plans, connection, { timeoutMs, boundMs });
    const overflows = { ceiling: 0, mdserver: 0, md_server: 0 };
    const counted = async (name: keyof typeof overflows, server: ServerProcess, plans: GuestPlan[]) => {
      const before = await listenOverflows();
      const result = await run(server, plans);
      overflows[name] += (await listenOverflows()) - before;
      return result;
    };

    progress(`md_server: warm-up with ${warmupCount} guests × ${served.length} requests on each server`);
    await run(ceiling, guests("mdserver", 0, warmupCount));
    await run(mdserver, guests("mdserver", 0, warmupCount));
    await run(mdServer, guests("md_server", 0, warmupCount));

    const measured = { ceiling: [] as Measured[], mdserver: [] as Measured[], md_server: [] as Measured[] };
    for (let round = 0; round < rounds; round++) {
      const from = warmupCount + round * count;
      progress(
        `md_server storm ${round + 1}/${rounds}: ${count} guests × ${served.length} requests, ` +
          `ceiling, mdserver, md_server`,
      );
      measured.ceiling.push(await counted("ceiling", ceiling, guests("mdserver", from, from + count)));
      measured.mdserver.push(await counted("mdserver", mdserver, guests("mdserver", from, from + count)));
      measured.md_server.push(await counted("md_server", mdServer, guests("md_server", from, from + count)));
    }
    const result = {
      ceiling: { ...serverRun(measured.ceiling), listenOverflows: overflows.ceiling },
      mdserver: { ...serverRun(measured.mdserver), listenOverflows: overflows.mdserver },
      md_server: { ...serverRun(measured.md_server), listenOverflows: overflows.md_server },
    };

    const distinct = [...new Set(served)];
    progress(`md_server: each of the ${distinct.length} served paths alone, on both servers`);
    const perPath: PathCost[] = [];
    for (const path of distinct) {
      const only = (server: "mdserver" | "md_server") =>
        guests(server, warmupCount, warmupCount + PATH_GUESTS).map((guest) => ({
          ...guest,
          paths: Array(PATH_REPEATS).fill(path) as string[],
        }));
      const least = serverRun([await run(ceiling, only("mdserver"))]);
      const mine = serverRun([await run(mdserver, only("mdserver"))]);
      const theirs = serverRun([await run(mdServer, only("md_server"))]);
      perPath.push({
        path,
        ceilingUs: least.cpuPerRequestUs,
        mdserverUs: mine.cpuPerRequestUs,
        mdServerUs: theirs.cpuPerRequestUs,
        errors: least.errors + mine.errors + theirs.errors,
      });
    }

    return {
      benchmark: "md_server",
      version: checkout.version,
      checkout: checkout.path,
      ec2Versions: MD_SERVER_EC2_VERSIONS,
      instances: count,
      rounds,
      warmupInstances: warmupCount,
      connection,
      timeoutSeconds: timeoutMs / 1000,
      boundSeconds: boundMs / 1000,
      planRequests: plan.length,
      served,
      unserved,
      mdServerCrawl,
      upload: phase,
      ...result,
      cpuRatio: ratio(result.md_server.cpuPerRequestUs, result.mdserver.cpuPerRequestUs),
      p99Ratio: ratio(result.md_server.p99Ms, result.mdserver.p99Ms),
      perPath,
      memory: { mdserver: await mdserver.memory(), md_server: await mdServer.memory() },
      problems: { mdserver: mdserver.problems(), md_server: mdServer.problems() },
    };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await Promise.all([setup.remove(), mdSetup.remove()]);
  }
}

/** The unserved paths in short: the version part dropped, e.g. "meta-data/local-ipv4 (404)". */
export function unservedSummary(result: MdServerComparison): string {
  return result.unserved.map(({ path, status }) => `${path.replace(/^\/[^/]+\//, "")} (${status})`).join(", ");
}

/** Table rows of every run of the comparison, header first. */
export function comparisonRows(result: MdServerComparison): string[][] {
  return [
    ["run", ...RUN_COLUMNS, "unsent (bound)", "accept-queue drops"],
    ...(["ceiling", "mdserver", "md_server"] as const).map((name) => [
      `md_server plan: ${name}`,
      ...runCells(result[name]),
      String(result[name].unsent),
      String(result[name].listenOverflows),
    ]),
  ];
}

/** Table rows of the per-path costs, header first. */
export function perPathRows(result: MdServerComparison): string[][] {
  return [
    ["path alone, CPU µs/request", "ceiling", "mdserver", "md_server", "errors"],
    ...result.perPath.map((
      cost,
    ) => [cost.path, String(cost.ceilingUs), String(cost.mdserverUs), String(cost.mdServerUs), String(cost.errors)]),
  ];
}

async function main(): Promise<void> {
  const arg = (name: string) => {
    const index = Deno.args.indexOf(`--${name}`);
    return index >= 0 ? Deno.args[index + 1] : undefined;
  };
  const checkout = arg("md-server");
  if (checkout === undefined) throw new TypeError("--md-server PATH (a checkout of md_server 0.6.x) is needed");
  const instances = Number(arg("instances") ?? "500");
  const rounds = Number(arg("rounds") ?? "2");
  for (const [name, value] of [["instances", instances], ["rounds", rounds]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} needs a positive whole number`);
  }
  const connection = arg("connection") ?? "close";
  if (connection !== "close" && connection !== "keep-alive") {
    throw new TypeError(`--connection must be "close" or "keep-alive", not "${connection}"`);
  }
  const result = await runMdServerComparison({
    checkout,
    instances,
    rounds,
    connection,
    progress: (line) => console.error(line),
  });
  console.log(formatTable(comparisonRows(result)));
  console.log(`\n${formatTable(perPathRows(result))}`);
  console.log(`\nnot served by md_server ${result.version}: ${unservedSummary(result)}`);
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
