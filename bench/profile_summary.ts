#!/usr/bin/env -S deno run -P=bench
/**
 * Where a V8 CPU profile's time went: self time by function and by file,
 * from the `.cpuprofile` files `deno run --cpu-prof` writes (bench/main.ts
 * `--cpu-prof` profiles mdserver during the storm). Idle time (`(idle)`,
 * the event loop waiting) is left out of the shares: they are of the time
 * the main thread was busy. `(program)` is native work outside any
 * JavaScript function: the event loop polling, op dispatch, the runtime.
 *
 *   deno run -P=bench bench/profile_summary.ts FILE.cpuprofile… [--top 25]
 *
 * @module
 */

/** The parts of a `.cpuprofile` read here. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }[];
  samples?: number[];
  timeDeltas?: number[];
}

/** One row of the summary: a function or a file, its share of the busy time. */
export interface ProfileRow {
  name: string;
  /** Share of the busy samples, percent. */
  percent: number;
}

/** The summary of one or more profiles. */
export interface ProfileSummary {
  /** Samples in all. */
  samples: number;
  /** Samples in which the thread waited for events (`(idle)`). */
  idleSamples: number;
  functions: ProfileRow[];
  files: ProfileRow[];
}

/** A file's name as read in the summary: the project's own relative to it, npm and Deno's own by their tail. */
function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const project = url.indexOf("/src/");
  if (project >= 0) return url.slice(project + 1);
  const bench = url.indexOf("/bench/");
  if (bench >= 0) return url.slice(bench + 1);
  const npm = url.indexOf("/npm/");
  if (npm >= 0) return `npm:${url.slice(npm + 5).split("/").slice(1, 2).join("/")}`;
  return url.replace(/^ext:/, "deno:");
}

/** Sums self samples of the profiles by function and by file. */
export function summarizeProfiles(profiles: CpuProfile[], top = 25): ProfileSummary {
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let samples = 0;
  let idle = 0;
  for (const profile of profiles) {
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    const counts = new Map<number, number>();
    if (profile.samples) {
      for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
    } else {
      for (const node of profile.nodes) counts.set(node.id, node.hitCount ?? 0);
    }
    for (const [id, count] of counts) {
      const frame = nodes.get(id)!.callFrame;
      samples += count;
      if (frame.functionName === "(idle)") {
        idle += count;
        continue;
      }
      const file = shortUrl(frame.url);
      const name = `${frame.functionName || "(anonymous)"} ${file}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
      byFunction.set(name, (byFunction.get(name) ?? 0) + count);
      byFile.set(file, (byFile.get(file) ?? 0) + count);
    }
  }
  const busy = Math.max(1, samples - idle);
  const rows = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, count]) => ({
      name,
      percent: Math.round((count / busy) * 1000) / 10,
    }));
  return { samples, idleSamples: idle, functions: rows(byFunction), files: rows(byFile) };
}

/** The summary as text: two ranked lists. */
export function formatProfileSummary(summary: ProfileSummary): string {
  const busy = summary.samples - summary.idleSamples;
  const lines = [
    `${summary.samples} samples, ${busy} busy (${Math.round((busy / Math.max(1, summary.samples)) * 100)}%)`,
    "",
    "self time by file (% of busy):",
    ...summary.files.map((row) => `  ${row.percent.toFixed(1).padStart(5)}  ${row.name}`),
    "",
    "self time by function (% of busy):",
    ...summary.functions.map((row) => `  ${row.percent.toFixed(1).padStart(5)}  ${row.name}`),
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const topAt = Deno.args.indexOf("--top");
  const top = topAt >= 0 ? Number(Deno.args[topAt + 1]) : 25;
  const files = Deno.args.filter((arg, index) => !arg.startsWith("--") && (topAt < 0 || index !== topAt + 1));
  if (files.length === 0) throw new TypeError("usage: profile_summary.ts FILE.cpuprofile… [--top 25]");
  const profiles = await Promise.all(files.map(async (file) => JSON.parse(await Deno.readTextFile(file))));
  console.log(formatProfileSummary(summarizeProfiles(profiles, top)));
}

if (import.meta.main) await main();
