#!/usr/bin/env -S deno run -P=bench
/**
 * Memory: the resident set of mdserver with 10,000 registered instances,
 * idle after start and after every one of them has booted (cloud-init's
 * whole EC2 sequence, in storms of `wave` instances at a time), read from
 * VmRSS and VmHWM in /proc/<pid>/status. The instances are registered into
 * the KV file before the server starts.
 *
 *   deno run -P=bench bench/memory.ts [--instances 10000] [--wave 500]
 *
 * Prints a table and one line of JSON. bench/main.ts runs it with the rest.
 *
 * @module
 */

import { type BenchSetup, measure, planFor, prepareSetup, type ServerRun, serverRun, settle } from "./boot_storm.ts";
import { type ProcessMemory, type ServerProcess, startMdserver } from "./server_process.ts";

/** What runMemory measured. */
export interface MemoryResult {
  benchmark: "memory";
  instances: number;
  wave: number;
  registerSeconds: number;
  /** Seconds from starting the process to its listener answering (dnsmasq records of every instance written). */
  startSeconds: number;
  idle: ProcessMemory;
  afterStorm: ProcessMemory;
  /** 15 s later, once the address cache has expired and V8 has had idle time to collect. */
  afterQuiet: ProcessMemory;
  storm: ServerRun;
}

/** Options of the memory benchmark. */
export interface MemoryOptions {
  instances?: number;
  /** Instances booting at once; default 500. */
  wave?: number;
  progress?: (line: string) => void;
}

/** Registers the instances, starts mdserver, boots every instance once and reads its memory before and after. */
export async function runMemory(options: MemoryOptions = {}): Promise<MemoryResult> {
  const count = options.instances ?? 10_000;
  const wave = options.wave ?? 500;
  const progress = options.progress ?? (() => {});
  progress(`memory: registering ${count} instances`);
  const setup: BenchSetup = await prepareSetup(count);
  let server: ServerProcess | null = null;
  try {
    const plans = await Promise.all(setup.instances.map((instance) => planFor(setup.config, instance)));
    const started = performance.now();
    server = await startMdserver(setup.configFile);
    const startSeconds = Math.round(performance.now() - started) / 1000;
    await settle(server);
    const idle = await server.memory();
    const runs = [];
    for (let first = 0; first < plans.length; first += wave) {
      progress(`memory: storm of instances ${first + 1}–${Math.min(plans.length, first + wave)} of ${plans.length}`);
      runs.push(await measure(server, plans.slice(first, first + wave), "close"));
    }
    await settle(server);
    const afterStorm = await server.memory();
    progress("memory: 15 s quiet");
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    return {
      benchmark: "memory",
      instances: count,
      wave,
      registerSeconds: setup.registerSeconds,
      startSeconds,
      idle,
      afterStorm,
      afterQuiet: await server.memory(),
      storm: serverRun(runs),
    };
  } finally {
    await server?.stop();
    await setup.remove();
  }
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const index = Deno.args.indexOf(`--${name}`);
    const value = Number(index >= 0 ? Deno.args[index + 1] : fallback);
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} needs a positive whole number`);
    return value;
  };
  const result = await runMemory({
    instances: arg("instances", "10000"),
    wave: arg("wave", "500"),
    progress: (line) => console.error(line),
  });
  console.log(`mdserver with ${result.instances} instances`);
  console.log(`idle after start:   VmRSS ${result.idle.rssMiB} MiB, VmHWM ${result.idle.hwmMiB} MiB`);
  console.log(`after every boot:   VmRSS ${result.afterStorm.rssMiB} MiB, VmHWM ${result.afterStorm.hwmMiB} MiB`);
  console.log(`15 s later:         VmRSS ${result.afterQuiet.rssMiB} MiB`);
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
