#!/usr/bin/env -S deno run -P=bench
/**
 * Where a boot storm's CPU goes by thread: the storm of bench/boot_storm.ts
 * (fresh guests, ceiling then mdserver, `rounds` times), with each server's
 * CPU time per thread (`/proc/<pid>/task/<tid>/stat`: the main thread, V8's
 * garbage-collector helpers, Deno KV's SQLite thread) before and after each
 * storm. Each round's guests are uploaded for their start first, as the
 * hook does (their answers prepared then; not counted), and ask 10.5 s
 * later; then the same guests storm mdserver again, their boots already
 * tracked, which leaves out what each guest costs once per boot.
 *
 *   deno run -P=bench bench/storm_threads.ts [--instances 300] [--rounds 2] [--connection keep-alive|close]
 *
 * Run it from a checkout of each version to compare them on the same machine
 * (alternately: a shared machine's load drifts).
 *
 * @module
 */

import { type Connection, measure, planFor, prepareSetup, serverRun, uploadStarts } from "./boot_storm.ts";
import { ADDRESS_CACHE_TTL_MS } from "../src/store/mod.ts";
import { startCeiling, startMdserver } from "./server_process.ts";

/** User and system CPU milliseconds of each thread kind (digits of the name dropped: `sw-0`, `sw-1` → `sw-N`). */
type ThreadTimes = Map<string, { userMs: number; systemMs: number }>;

/** CPU times of every thread of a process, by thread id and name. */
async function threadTimes(pid: number): Promise<Map<string, [number, number]>> {
  // /proc is granted only to --allow-all: bash and cat read it (as server_process.ts's readProcFile).
  const script = `for t in /proc/${pid}/task/*; do echo "$(cat $t/comm)|$(cat $t/stat)"; done`;
  const output = await new Deno.Command("bash", { args: ["-c", script], stdout: "piped", stderr: "piped" }).output();
  const times = new Map<string, [number, number]>();
  for (const line of new TextDecoder().decode(output.stdout).trim().split("\n")) {
    const [name, stat] = line.split("|", 2) as [string, string | undefined];
    if (stat === undefined) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    times.set(`${name}#${stat.split(" ")[0]}`, [Number(fields[11]) * 10, Number(fields[12]) * 10]);
  }
  return times;
}

/** What each kind of thread used between two readings. */
function used(before: Map<string, [number, number]>, after: Map<string, [number, number]>): ThreadTimes {
  const kinds: ThreadTimes = new Map();
  for (const [key, [user, system]] of after) {
    const [user0, system0] = before.get(key) ?? [0, 0];
    const kind = key.split("#")[0]!.trim().replace(/\d+$/, "N");
    const sum = kinds.get(kind) ?? { userMs: 0, systemMs: 0 };
    sum.userMs += user - user0;
    sum.systemMs += system - system0;
    kinds.set(kind, sum);
  }
  return kinds;
}

/** Thread times added up by kind. */
function sum(all: ThreadTimes[]): ThreadTimes {
  const total: ThreadTimes = new Map();
  for (const times of all) {
    for (const [kind, t] of times) {
      const sofar = total.get(kind) ?? { userMs: 0, systemMs: 0 };
      total.set(kind, { userMs: sofar.userMs + t.userMs, systemMs: sofar.systemMs + t.systemMs });
    }
  }
  return total;
}

function describe(times: ThreadTimes): string {
  return [...times].filter(([, t]) => t.userMs + t.systemMs > 0)
    .map(([kind, t]) => `${kind}: user ${t.userMs} ms, system ${t.systemMs} ms`).join("; ");
}

async function main(): Promise<void> {
  const arg = (name: string) => {
    const index = Deno.args.indexOf(`--${name}`);
    return index >= 0 ? Deno.args[index + 1] : undefined;
  };
  const count = Number(arg("instances") ?? "300");
  const rounds = Number(arg("rounds") ?? "2");
  for (const [name, value] of [["instances", count], ["rounds", rounds]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`--${name} needs a positive whole number`);
  }
  const connection = (arg("connection") ?? "keep-alive") as Connection;
  if (connection !== "close" && connection !== "keep-alive") {
    throw new TypeError(`--connection must be "close" or "keep-alive", not "${connection}"`);
  }
  const warmup = Math.max(20, Math.round(count / 10));
  const setup = await prepareSetup(warmup + rounds * count);
  const plans = await Promise.all(setup.instances.map((instance) => planFor(setup.config, instance)));
  const storms = Array.from({ length: rounds }, (_, r) => plans.slice(warmup + r * count, warmup + (r + 1) * count));
  const [mdserver, ceiling] = await Promise.all([startMdserver(setup.configFile), startCeiling()]);
  try {
    await measure(ceiling, plans.slice(0, warmup), connection);
    await measure(mdserver, plans.slice(0, warmup), connection);
    const fresh = [], ceilingRuns = [];
    const mdFresh: ThreadTimes[] = [], ceilingFresh: ThreadTimes[] = [];
    for (const [round, guests] of storms.entries()) {
      // Their starts first, as the hook uploads them; they ask once the store no longer trusts what it read then.
      const first = warmup + round * count;
      await uploadStarts(mdserver, setup.config.admin.socket!, guests.map((_, i) => first + i));
      const bootsAt = performance.now() + ADDRESS_CACHE_TTL_MS + 500;
      const ceiling0 = await threadTimes(ceiling.pid);
      ceilingRuns.push(await measure(ceiling, guests, connection));
      ceilingFresh.push(used(ceiling0, await threadTimes(ceiling.pid)));
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, bootsAt - performance.now())));
      const md0 = await threadTimes(mdserver.pid);
      fresh.push(await measure(mdserver, guests, connection));
      mdFresh.push(used(md0, await threadTimes(mdserver.pid)));
    }
    const md1 = await threadTimes(mdserver.pid);
    const again = [];
    for (const guests of storms) again.push(await measure(mdserver, guests, connection));
    const md2 = await threadTimes(mdserver.pid);

    const freshRun = serverRun(fresh), ceilingRun = serverRun(ceilingRuns), againRun = serverRun(again);
    const ratio = (us: number) => (us / ceilingRun.cpuPerRequestUs).toFixed(2);
    console.log(`storm (${connection}), ${count} guests × ${storms[0]![0]!.paths.length} requests × ${rounds}:`);
    console.log(
      `  fresh guests: mdserver ${freshRun.cpuPerRequestUs} µs/request, ceiling ${ceilingRun.cpuPerRequestUs} (${
        ratio(freshRun.cpuPerRequestUs)
      }×), errors ${freshRun.errors} / ${ceilingRun.errors}`,
    );
    console.log(`    mdserver threads: ${describe(sum(mdFresh))}`);
    console.log(`    ceiling threads: ${describe(sum(ceilingFresh))}`);
    console.log(
      `  the same guests again (all prepared): ${againRun.cpuPerRequestUs} µs/request (${
        ratio(againRun.cpuPerRequestUs)
      }×), errors ${againRun.errors}`,
    );
    console.log(`    mdserver threads: ${describe(used(md1, md2))}`);
  } finally {
    await Promise.all([mdserver.stop(), ceiling.stop()]);
    await setup.remove();
  }
}

if (import.meta.main) await main();
