#!/usr/bin/env -S deno run -P=bench
/**
 * CPU per request of the guest HTTP server (src/http_server/) against the
 * ceiling, a `Deno.serve` answering the same constant: both as their own
 * processes (CPU time from /proc/<pid>/stat), the same request plan (each of
 * `guests` loopback addresses asks `/2021-03-23/meta-data/instance-id`
 * `repeats` times), over kept-alive connections and over a new connection
 * per request, alternating the servers `rounds` times after a warm-up.
 *
 *   deno run -P=bench bench/guest_server.ts [--guests 300] [--repeats 20] [--rounds 3]
 *
 * Prints a table and one line of JSON.
 *
 * @module
 */

import { join } from "node:path";
import { type GuestPlan, type LoadSample, runLoad, summarize } from "./load_generator.ts";
import { processCpuSeconds, processMemory, PROJECT_DIR } from "./server_process.ts";

/** A constant server as its own process. */
export interface ConstantServer {
  name: string;
  pid: number;
  url: string;
  stop(): Promise<void>;
}

/** One server over one kind of connection, all rounds added up. */
export interface ConstantRun {
  server: string;
  connection: "close" | "keep-alive";
  requests: number;
  errors: number;
  firstError: string | null;
  cpuPerRequestUs: number;
  p50Ms: number;
  p99Ms: number;
  rssMiB: number;
}

/** Starts `deno run -P=bench FILE ARGS…` and waits for its `listening on URL` line. */
export async function startConstant(name: string, file: string, args: string[] = []): Promise<ConstantServer> {
  const child = new Deno.Command("deno", {
    args: ["run", "-q", "-P=bench", "--config", join(PROJECT_DIR, "deno.json"), join(PROJECT_DIR, file), ...args],
    cwd: PROJECT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`${file} exited before listening`);
      text += value;
      const match = /listening on (http:\/\/[^ /]+)/.exec(text);
      if (match) {
        lines.releaseLock();
        child.stdout.cancel().catch(() => {});
        return {
          name,
          pid: child.pid,
          url: match[1]!,
          async stop() {
            child.kill("SIGTERM");
            const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
            await child.status;
            clearTimeout(kill);
          },
        };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** CPU seconds once the process has been idle for 200 ms (at most 5 s). */
async function idleCpu(pid: number): Promise<number> {
  let last = await processCpuSeconds(pid);
  for (let i = 0; i < 25; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = await processCpuSeconds(pid);
    if (now === last) return now;
    last = now;
  }
  return last;
}

/** Guests on 127.91.x.y, each asking one path `repeats` times. */
export function constantPlan(guests: number, repeats: number): GuestPlan[] {
  return Array.from({ length: guests }, (_, index) => ({
    address: `127.91.${1 + Math.floor(index / 250)}.${1 + (index % 250)}`,
    paths: Array(repeats).fill("/2021-03-23/meta-data/instance-id") as string[],
  }));
}

/** Runs the comparison. */
export async function runGuestServerBench(
  options: { guests?: number; repeats?: number; rounds?: number; progress?: (line: string) => void } = {},
): Promise<ConstantRun[]> {
  const guests = constantPlan(options.guests ?? 300, options.repeats ?? 20);
  const rounds = options.rounds ?? 3;
  const progress = options.progress ?? (() => {});
  const servers = await Promise.all([
    startConstant("Deno.serve", "bench/ceiling_server.ts"),
    startConstant("guest server", "bench/guest_server_constant.ts"),
    startConstant("guest server, answered ahead", "bench/guest_server_constant.ts", ["--ahead"]),
  ]);
  try {
    const results: ConstantRun[] = [];
    for (const connection of ["keep-alive", "close"] as const) {
      const samples = new Map<string, { loads: LoadSample[]; cpu: number }>();
      for (const server of servers) {
        samples.set(server.name, { loads: [], cpu: 0 });
        await runLoad({ baseUrl: server.url, guests: guests.slice(0, 50), connection }); // warm-up
      }
      for (let round = 0; round < rounds; round++) {
        for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
          progress(`${connection} round ${round + 1}/${rounds}: ${server.name}`);
          const before = await idleCpu(server.pid);
          const load = await runLoad({ baseUrl: server.url, guests, connection });
          const cpu = (await idleCpu(server.pid)) - before;
          const entry = samples.get(server.name)!;
          entry.loads.push(load);
          entry.cpu += cpu;
        }
      }
      for (const server of servers) {
        const entry = samples.get(server.name)!;
        const load = summarize(entry.loads);
        results.push({
          server: server.name,
          connection,
          requests: load.requests,
          errors: load.errors,
          firstError: load.firstError,
          cpuPerRequestUs: Math.round((entry.cpu / Math.max(1, load.requests)) * 1e7) / 10,
          p50Ms: load.p50Ms,
          p99Ms: load.p99Ms,
          rssMiB: (await processMemory(server.pid)).rssMiB,
        });
      }
    }
    return results;
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const index = Deno.args.indexOf(`--${name}`);
    const value = index >= 0 ? Number(Deno.args[index + 1]) : fallback;
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} needs a positive whole number`);
    return value;
  };
  const results = await runGuestServerBench({
    guests: arg("guests", 300),
    repeats: arg("repeats", 20),
    rounds: arg("rounds", 3),
    progress: (line) => console.error(line),
  });
  const rows = [["server", "connection", "requests", "errors", "CPU µs/req", "ratio", "p50 ms", "p99 ms", "RSS MiB"]];
  for (const run of results) {
    const ceiling = results.find((other) => other.server === "Deno.serve" && other.connection === run.connection)!;
    rows.push([
      run.server,
      run.connection,
      String(run.requests),
      String(run.errors),
      String(run.cpuPerRequestUs),
      String(Math.round((run.cpuPerRequestUs / ceiling.cpuPerRequestUs) * 100) / 100),
      String(run.p50Ms),
      String(run.p99Ms),
      String(run.rssMiB),
    ]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  console.log(rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ")).join("\n"));
  console.log(JSON.stringify({ benchmark: "guest_server", results }));
}

if (import.meta.main) await main();
