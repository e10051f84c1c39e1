/**
 * The boot storm's lines in the summary of `deno task bench`: its targets
 * (issue 19: CPU per request ≤ 1.2× the ceiling over new connections and
 * ≤ 1.5× over kept-alive ones, p99 ≤ 1.5×, no errors, user-data ≤ 1.3× a
 * static leaf over kept-alive connections) and its rows of the README table,
 * each kind of connection beside its own ceiling.
 *
 * @module
 */

import type { BootStormResult } from "./boot_storm.ts";

/** A target and whether the run met it. */
export interface StormVerdict {
  target: string;
  value: string;
  met: boolean;
}

/** CPU per request over the ceiling's, by kind of connection. */
export const STORM_CPU_TARGETS = { "close": 1.2, "keep-alive": 1.5 } as const;
/** p99 over the ceiling's. */
export const STORM_P99_TARGET = 1.5;
/** User-data's CPU per request over a static leaf's, by kind of connection (null: reported only). */
export const RENDER_TARGETS = { "close": null, "keep-alive": 1.3 } as const;

/** The storm's targets, judged. */
export function stormVerdicts(storm: BootStormResult): StormVerdict[] {
  const out: StormVerdict[] = [];
  for (const run of storm.storms) {
    const cpuTarget = STORM_CPU_TARGETS[run.connection];
    out.push({
      target: `storm (${run.connection}): CPU per request ≤ ${cpuTarget}× ceiling`,
      value: `${run.cpuRatio}×`,
      met: run.cpuRatio <= cpuTarget,
    });
    out.push({
      target: `storm (${run.connection}): p99 ≤ ${STORM_P99_TARGET}× ceiling`,
      value: `${run.p99Ratio}×`,
      met: run.p99Ratio <= STORM_P99_TARGET,
    });
    out.push({
      target: `storm (${run.connection}): no errors, one log line per request`,
      value: `${run.mdserver.errors} errors, ${run.mdserver.logLines} lines / ${run.mdserver.requests} requests`,
      met: run.mdserver.errors === 0 && run.ceiling.errors === 0 &&
        run.mdserver.logLines === run.mdserver.requests && storm.planVerified,
    });
  }
  for (const run of storm.rendering.runs) {
    const target = RENDER_TARGETS[run.connection];
    if (target === null) continue;
    out.push({
      target: `render (${run.connection}): user-data CPU ≤ ${target}× static leaf`,
      value: `${run.cpuRatio}×`,
      met: run.cpuRatio <= target,
    });
  }
  return out;
}

/** The storm's rows of the summary table: benchmark, mdserver, ceiling, ratio, target. */
export function stormSummaryRows(storm: BootStormResult): string[][] {
  const rows: string[][] = [];
  for (const run of storm.storms) {
    const m = run.mdserver;
    const c = run.ceiling;
    rows.push([
      `boot storm (${run.connection}), ${storm.instances} guests × ${storm.requestsPerBoot} requests × ${storm.rounds}: ` +
      "CPU µs/request",
      String(m.cpuPerRequestUs),
      String(c.cpuPerRequestUs),
      `${run.cpuRatio}`,
      `≤ ${STORM_CPU_TARGETS[run.connection]}`,
    ]);
    rows.push([
      `boot storm (${run.connection}): p50 / p99 ms, errors`,
      `${m.p50Ms.toFixed(1)} / ${m.p99Ms.toFixed(1)}, ${m.errors}`,
      `${c.p50Ms.toFixed(1)} / ${c.p99Ms.toFixed(1)}, ${c.errors}`,
      `${run.p99Ratio}`,
      `≤ ${STORM_P99_TARGET}`,
    ]);
  }
  for (const run of storm.rendering.runs) {
    const target = RENDER_TARGETS[run.connection];
    rows.push([
      `user-data vs static leaf (${run.connection}): CPU µs/request`,
      String(run.userData.cpuPerRequestUs),
      String(run.staticLeaf.cpuPerRequestUs),
      `${run.cpuRatio}`,
      target === null ? "(reported)" : `≤ ${target}`,
    ]);
  }
  rows.push([
    "template render alone, in process, µs: asked again / new document",
    `${storm.rendering.inProcess.repeatUs} / ${storm.rendering.inProcess.newDocumentUs}`,
    "",
    "",
    "",
  ]);
  return rows;
}
