#!/usr/bin/env -S deno run -P=bench
/**
 * Every benchmark in one run, each beside its ceiling, on this machine:
 *
 * - storm: cloud-init's EC2 boot sequence from N guests at once against
 *   mdserver and against a minimal `Deno.serve` (bench/boot_storm.ts), with
 *   the rendering comparison (user-data against a static leaf);
 * - upload: 10,000 uploads, the last thousand against the first (bench/upload_scaling.ts);
 * - hook: the libvirt hook's wall time against bash + curl (bench/hook_latency.ts);
 * - memory: mdserver's resident set with 10,000 instances after they all booted (bench/memory.ts);
 * - md_server, with `--md-server PATH` (a checkout of md_server 0.6.x): the same guests uploaded to
 *   mdserver and md_server, then the storm's requests md_server serves, sent to the ceiling, mdserver and
 *   md_server (bench/md_server_storm.ts).
 *
 *   deno task bench
 *   deno task bench -- --only storm[,md_server,upload,hook,memory] [--instances 500] [--rounds 2]
 *     [--connection close|keep-alive (default: the storm over both)] [--uploads 10000] [--hook-calls 50] [--memory-instances 10000]
 *     [--md-server PATH] [--out FILE] [--cpu-prof]
 *
 * Prints the machine, a table with each target and whether it is met, and
 * the results as JSON, which it also writes to bench/results/latest.json.
 *
 * @module
 */

import { join } from "node:path";
import { type BootStormResult, type Connection, formatTable, runBootStorm, stormRows } from "./boot_storm.ts";
import { stormSummaryRows, stormVerdicts } from "./storm_report.ts";
import { HOOK_VARIANTS, type HookLatencyResult, runHookLatency } from "./hook_latency.ts";
import { type MemoryResult, runMemory } from "./memory.ts";
import { PROJECT_DIR, readProcFile } from "./server_process.ts";
import { runUploadScaling, type UploadScalingResult } from "./upload_scaling.ts";
import {
  comparisonRows,
  type MdServerComparison,
  perPathRows,
  runMdServerComparison,
  unservedSummary,
} from "./md_server_storm.ts";

/** The benchmarks, in the order they run. */
export const BENCHMARKS = ["storm", "md_server", "upload", "hook", "memory"] as const;

/** One benchmark's name. */
export type BenchmarkName = typeof BENCHMARKS[number];

/** The machine the numbers come from. */
export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  deno: string;
  v8: string;
  os: string;
  command: string;
}

/** A target and whether the run met it. */
export interface Verdict {
  target: string;
  value: string;
  met: boolean;
}

/** Everything one run measured. */
export interface BenchResults {
  date: string;
  machine: Machine;
  seconds: number;
  storm?: BootStormResult;
  md_server?: MdServerComparison;
  upload?: UploadScalingResult;
  hook?: HookLatencyResult;
  memory?: MemoryResult;
  verdicts: Verdict[];
}

/** The machine: `nproc`, CPU model, RAM, Deno and the command line. */
export async function describeMachine(command: string): Promise<Machine> {
  const cpuinfo = await readProcFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await readProcFile("/proc/meminfo").catch(() => "");
  const kib = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? NaN);
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memoryGiB: Math.round((kib / 1024 / 1024) * 10) / 10,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    command,
  };
}

/** The targets of the issue, judged on what was measured. */
export function verdicts(results: BenchResults): Verdict[] {
  const out: Verdict[] = [];
  const { storm, upload, hook, memory } = results;
  if (storm) out.push(...stormVerdicts(storm));
  if (upload) {
    out.push({ target: "upload: last/first thousand ≤ 1.5", value: `${upload.ratio}`, met: upload.ratio <= 1.5 });
  }
  if (hook) {
    const installed = hook.ratios.find((entry) => entry.name === HOOK_VARIANTS.installed)?.p50 ?? null;
    const floor = hook.ratios.find((entry) => entry.name === HOOK_VARIANTS.floor)?.p50 ?? null;
    out.push({
      target: "hook: deno run hook.ts as installed ≤ 1.5× bash + curl at p50",
      value: `${installed ?? "-"} (the floor, deno starting an empty module: ${floor ?? "-"})`,
      met: installed !== null && installed <= 1.5,
    });
  }
  if (memory) {
    out.push({
      target: `memory: all ${memory.instances} instances boot without errors (RSS is reported, it has no target)`,
      value: `${memory.storm.errors} errors, VmRSS ${memory.afterStorm.rssMiB} MiB`,
      met: memory.storm.errors === 0,
    });
  }
  return out;
}

/** The results as the README table: one row per measurement, its ceiling beside it. */
export function summaryRows(results: BenchResults): string[][] {
  const rows: string[][] = [["benchmark", "mdserver", "ceiling", "ratio", "target"]];
  const { storm, upload, hook, memory } = results;
  if (storm) rows.push(...stormSummaryRows(storm));
  if (results.md_server) rows.push(...mdServerRows(results.md_server));
  if (upload) {
    rows.push([
      `upload, ${upload.count}: mean ms, last vs first ${upload.window}`,
      String(upload.last.meanMs),
      String(upload.first.meanMs),
      `${upload.ratio}`,
      "≤ 1.5",
    ]);
  }
  if (hook) {
    const find = (name: string) => hook.results.find((result) => result.name === name);
    const deno = find(HOOK_VARIANTS.installed);
    const floor = find(HOOK_VARIANTS.floor);
    const compiled = find(HOOK_VARIANTS.compiled);
    const curl = find(HOOK_VARIANTS.curl);
    const ratio = (name: string) => hook.ratios.find((entry) => entry.name === name)?.p50;
    const cell = (value: number | null | undefined) => value === null || value === undefined ? "-" : String(value);
    rows.push([
      "hook wall time p50 / p99 ms: deno run hook.ts as installed vs bash + curl",
      `${cell(deno?.p50Ms)} / ${cell(deno?.p99Ms)}`,
      `${cell(curl?.p50Ms)} / ${cell(curl?.p99Ms)}`,
      cell(ratio(HOOK_VARIANTS.installed)),
      "≤ 1.5",
    ]);
    rows.push([
      "hook floor p50 / p99 ms: the wrapper running an empty module",
      `${cell(floor?.p50Ms)} / ${cell(floor?.p99Ms)}`,
      `${cell(curl?.p50Ms)} / ${cell(curl?.p99Ms)}`,
      cell(ratio(HOOK_VARIANTS.floor)),
      "",
    ]);
    rows.push([
      "hook wall time p50 / p99 ms: compiled hook",
      compiled?.skipped ? compiled.skipped : `${cell(compiled?.p50Ms)} / ${cell(compiled?.p99Ms)}`,
      "",
      compiled?.skipped ? "" : cell(ratio(HOOK_VARIANTS.compiled)),
      "",
    ]);
  }
  if (memory) {
    rows.push([
      `memory, ${memory.instances} instances: VmRSS MiB idle / after all booted / 15 s later (VmHWM)`,
      `${memory.idle.rssMiB} / ${memory.afterStorm.rssMiB} / ${memory.afterQuiet.rssMiB} (${memory.afterStorm.hwmMiB})`,
      storm ? `${storm.memory.ceiling.rssMiB}` : "",
      "",
      "",
    ]);
  }
  return rows;
}

/** The rows of the md_server comparison in the summary table: md_server's values are marked as such. */
export function mdServerRows(result: MdServerComparison): string[][] {
  const { ceiling, mdserver, md_server: theirs, upload } = result;
  const name = `md_server ${result.version}`;
  const milliseconds = (run: { p50Ms: number; p99Ms: number }) => `${run.p50Ms.toFixed(1)} / ${run.p99Ms.toFixed(1)}`;
  const ceilingRatio = (value: number, of: number) => `${Math.round((value / of) * 100) / 100}`;
  const side = (values: UploadSideCells) => `${values.firstMeanMs} / ${values.lastMeanMs}, ${values.cpuPerUploadMs}`;
  return [
    [
      `beside ${name}: ${result.instances} guests × ${result.served.length} requests × ${result.rounds}, ` +
      `the ${result.served.length} of cloud-init's ${result.planRequests} it answers: CPU µs/request`,
      String(mdserver.cpuPerRequestUs),
      String(ceiling.cpuPerRequestUs),
      ceilingRatio(mdserver.cpuPerRequestUs, ceiling.cpuPerRequestUs),
      "(reported)",
    ],
    [
      `… ${name} (one Python thread, bottle's WSGIRefServer): CPU µs/request`,
      `md_server ${theirs.cpuPerRequestUs}`,
      String(ceiling.cpuPerRequestUs),
      ceilingRatio(theirs.cpuPerRequestUs, ceiling.cpuPerRequestUs),
      `${result.cpuRatio}× mdserver`,
    ],
    [
      `… p50 / p99 ms`,
      `${milliseconds(mdserver)}; md_server ${milliseconds(theirs)}`,
      milliseconds(ceiling),
      ceilingRatio(theirs.p99Ms, ceiling.p99Ms),
      `p99 ${result.p99Ratio}× mdserver`,
    ],
    [
      `… requests/s, errors (${result.timeoutSeconds} s timeout); md_server's connections dropped at a full ` +
      `accept queue, requests unsent when the run's ${result.boundSeconds} s passed`,
      `${mdserver.requestsPerSecond}, ${mdserver.errors}; md_server ${theirs.requestsPerSecond}, ${theirs.errors}, ` +
      `${theirs.listenOverflows} dropped, ${theirs.unsent} unsent`,
      `${ceiling.requestsPerSecond}, ${ceiling.errors}`,
      "",
      "",
    ],
    [
      `… upload over HTTP, ${upload.count} domains into empty databases: mean ms first / last ${upload.window}, ` +
      `CPU ms/upload`,
      `${side(upload.mdserver)}; md_server ${side(upload.md_server)}`,
      "",
      `last/first ${upload.mdserver.ratio}; md_server ${upload.md_server.ratio}`,
      "",
    ],
    [
      `… VmRSS MiB after the storms (VmHWM)`,
      `${result.memory.mdserver.rssMiB} (${result.memory.mdserver.hwmMiB}); md_server ${result.memory.md_server.rssMiB} ` +
      `(${result.memory.md_server.hwmMiB})`,
      "",
      "",
      "",
    ],
    [
      `… not answered by ${name} (asked for the same guest, left out above)`,
      `${result.unserved.length} of ${result.planRequests}`,
      "",
      "",
      "",
    ],
  ];
}

type UploadSideCells = MdServerComparison["upload"]["mdserver"];

/** Markdown of rows, header first. */
export function markdownTable(rows: string[][]): string {
  const line = (row: string[]) => `| ${row.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(rows[0]!), line(rows[0]!.map(() => "---")), ...rows.slice(1).map(line)].join("\n");
}

function positive(value: string | true | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (value === true || !Number.isInteger(number) || number < 1) {
    throw new RangeError(`--${name} needs a positive whole number, not "${value}"`);
  }
  return number;
}

/** Runs the chosen benchmarks; returns the exit code (0 when every one ran). */
export async function main(rawArgs: string[]): Promise<number> {
  // `deno task bench -- --only storm` passes the "--" on.
  const argv = rawArgs.filter((arg) => arg !== "--");
  const line = benchOptions(argv, ["help", "cpu-prof"]);
  if (line.options.has("help")) {
    console.log(`usage: deno task bench -- [--only ${BENCHMARKS.join(",")}] [--instances 500] [--rounds 2]
  [--connection close|keep-alive (default: the storm over both)] [--uploads 10000] [--hook-calls 50] [--memory-instances 10000] [--out FILE]
  [--cpu-prof]   profile mdserver during the storm: V8 .cpuprofile files in bench/results/profiles/
  [--md-server PATH]   also run md_server 0.6.x from this checkout beside mdserver (benchmark md_server;
                       /usr/bin/python3 with python3-bottle and python3-xmltodict)`);
    return 0;
  }
  const mdServerPath = line.options.get("md-server");
  if (mdServerPath === "" || mdServerPath === true) throw new TypeError("--md-server needs the path of a checkout");
  const onlyOption = line.options.get("only");
  const only = typeof onlyOption === "string"
    ? onlyOption.split(",").map((name) => name.trim())
    : BENCHMARKS.filter((name) => name !== "md_server" || mdServerPath !== undefined);
  for (const name of only) {
    if (!(BENCHMARKS as readonly string[]).includes(name)) {
      throw new TypeError(`--only takes ${BENCHMARKS.join(", ")}; not "${name}"`);
    }
  }
  if (only.includes("md_server") && mdServerPath === undefined) {
    throw new TypeError("the md_server benchmark needs --md-server PATH (a checkout of md_server 0.6.x)");
  }
  const connectionOption = line.options.get("connection");
  if (connectionOption !== undefined && connectionOption !== "close" && connectionOption !== "keep-alive") {
    throw new TypeError(`--connection must be "close" or "keep-alive", not "${connectionOption}"`);
  }
  // The storm runs over both kinds of connection unless one is named; md_server's as cloud-init connects.
  const connections = connectionOption === undefined ? undefined : [connectionOption as Connection];
  const connection = connections?.[0] ?? "close";
  const out = typeof line.options.get("out") === "string"
    ? line.options.get("out") as string
    : join(PROJECT_DIR, "bench/results/latest.json");

  const started = performance.now();
  const progress = (text: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${text}`);
  const machine = await describeMachine(`deno task bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`);
  const results: BenchResults = { date: new Date().toISOString(), machine, seconds: 0, verdicts: [] };
  if (only.includes("storm")) {
    const profileDir = join(PROJECT_DIR, "bench/results/profiles");
    if (line.options.has("cpu-prof")) await Deno.mkdir(profileDir, { recursive: true });
    results.storm = await runBootStorm({
      instances: positive(line.options.get("instances"), "instances", 500),
      rounds: positive(line.options.get("rounds"), "rounds", 2),
      ...(connections ? { connections } : {}),
      mdserverFlags: line.options.has("cpu-prof") ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [],
      progress,
    });
  }
  if (only.includes("md_server") && typeof mdServerPath === "string") {
    results.md_server = await runMdServerComparison({
      checkout: mdServerPath,
      instances: positive(line.options.get("instances"), "instances", 500),
      rounds: positive(line.options.get("rounds"), "rounds", 2),
      connection: connection as Connection,
      progress,
    });
  }
  if (only.includes("upload")) {
    const count = positive(line.options.get("uploads"), "uploads", 10_000);
    progress(`upload scaling: ${count} uploads`);
    results.upload = await runUploadScaling(count);
  }
  if (only.includes("hook")) {
    const calls = positive(line.options.get("hook-calls"), "hook-calls", 50);
    progress(`hook latency: ${calls} calls of each variant`);
    results.hook = await runHookLatency(calls);
  }
  if (only.includes("memory")) {
    results.memory = await runMemory({
      instances: positive(line.options.get("memory-instances"), "memory-instances", 10_000),
      wave: positive(line.options.get("instances"), "instances", 500),
      progress,
    });
  }
  results.seconds = Math.round((performance.now() - started) / 1000);
  results.verdicts = verdicts(results);

  console.log(
    `machine: ${machine.nproc} CPUs (nproc), ${machine.cpu}, ${machine.memoryGiB} GiB RAM, ` +
      `Deno ${machine.deno} (V8 ${machine.v8}), ${machine.os}`,
  );
  console.log(`command: ${machine.command} (${results.seconds} s)\n`);
  console.log(markdownTable(summaryRows(results)));
  if (results.storm) {
    console.log("\nboot storm and rendering, every run:");
    console.log(formatTable(stormRows(results.storm)));
  }
  if (results.md_server) {
    console.log(`\nbeside md_server ${results.md_server.version}, every run:`);
    console.log(formatTable(comparisonRows(results.md_server)));
    console.log(`\n${formatTable(perPathRows(results.md_server))}`);
    console.log(`\nnot answered by md_server (left out of its storm): ${unservedSummary(results.md_server)}`);
  }
  console.log("\ntargets:");
  for (const verdict of results.verdicts) {
    console.log(`  ${verdict.met ? "met    " : "NOT MET"}  ${verdict.target}: ${verdict.value}`);
  }
  await Deno.mkdir(join(out, ".."), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nJSON (also in ${out}):`);
  console.log(JSON.stringify(results));
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/** `--name value`, `--name=value` and `--flag` options of the bench command line. */
function benchOptions(argv: string[], flags: string[]): { options: Map<string, string | true> } {
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") options.set("help", true);
    if (!arg.startsWith("--")) continue;
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (inline !== undefined) options.set(name, inline);
    else if (flags.includes(name)) options.set(name, true);
    else if (argv[i + 1] !== undefined) options.set(name, argv[++i]!);
    else throw new TypeError(`option --${name} needs a value`);
  }
  return { options };
}
