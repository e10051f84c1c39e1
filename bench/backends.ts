#!/usr/bin/env -S deno run -P=bench
/**
 * The store's two backends side by side: the upload benchmark (N uploads,
 * uploads per second and the last thousand against the first) and the
 * boot storm (CPU per request and p99 against the ceiling) on Deno KV and
 * on etcd — a three-member cluster of Debian's etcd-server on loopback, on
 * this same machine, so etcd's CPU and fsyncs share its cores and disk.
 *
 *   deno run -P=bench bench/backends.ts [--uploads 2000] [--instances 300] [--rounds 2]
 *
 * Prints a table and writes the results as JSON to bench/results/backends.json.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { runBootStorm } from "./boot_storm.ts";
import { PROJECT_DIR } from "./server_process.ts";
import { runUploadScaling } from "./upload_scaling.ts";
import { startEtcdCluster } from "../tests/_etcd_cluster.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    uploads: { type: "string", default: "2000" },
    instances: { type: "string", default: "300" },
    rounds: { type: "string", default: "2" },
  },
});
const uploads = Number(values.uploads);
const instances = Number(values.instances);
const rounds = Number(values.rounds);
const out = (line: string) => Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));

const cluster = await startEtcdCluster(3);
try {
  const stores: [string, (prefix: string) => string][] = [
    ["kv", () => ""],
    ["etcd", (prefix) => `\n[store]\nbackend = etcd\nendpoints = ${cluster.endpoints.join(",")}\nprefix = ${prefix}\n`],
  ];
  const results: Record<string, unknown> = {};
  const rows = [[
    "backend",
    "uploads/s",
    "upload mean ms (first)",
    "(last)",
    "last/first",
    "storm req/s",
    "storm p99 ms",
    "CPU µs/req",
    "ceiling CPU µs/req",
    "CPU ratio",
  ]];
  for (const [name, storeIni] of stores) {
    out(`${name}: ${uploads} uploads`);
    const upload = await runUploadScaling(uploads, storeIni(`/bench-upload-${crypto.randomUUID().slice(0, 8)}/`));
    out(`${name}: boot storm, ${instances} instances × ${rounds} rounds`);
    const storm = await runBootStorm({
      instances,
      rounds,
      storeIni: storeIni(`/bench-storm-${crypto.randomUUID().slice(0, 8)}/`),
      progress: (line) => out(`  ${line}`),
    });
    results[name] = { upload, storm };
    rows.push([
      name,
      (upload.count / upload.totalSeconds).toFixed(0),
      upload.first.meanMs.toFixed(2),
      upload.last.meanMs.toFixed(2),
      upload.ratio.toFixed(2),
      String(storm.mdserver.requestsPerSecond),
      storm.mdserver.p99Ms.toFixed(1),
      String(storm.mdserver.cpuPerRequestUs),
      String(storm.ceiling.cpuPerRequestUs),
      storm.cpuRatio.toFixed(2),
    ]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) out(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  "));
  await Deno.mkdir(join(PROJECT_DIR, "bench/results"), { recursive: true });
  await Deno.writeTextFile(
    join(PROJECT_DIR, "bench/results/backends.json"),
    JSON.stringify({ uploads, instances, rounds, nproc: navigator.hardwareConcurrency, results }, null, 2) + "\n",
  );
} finally {
  await cluster.stop();
}
