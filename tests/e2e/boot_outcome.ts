/**
 * How a boot ended, as the host learns it from cloud-init's own events:
 * `mdserver wait NAME`, started right after `virsh start` as the README's
 * recipe runs it (`virsh start web01 && mdserver wait web01 && ssh web01`),
 * must return 0 once the guest's current boot has ended, and the admin
 * API's current boot must be `done`: opened by the hook's upload, every
 * stage that reported finished SUCCESS, nothing dropped, no problem.
 *
 * @module
 */

import { adminJson } from "./admin_client.ts";
import { mdserverCommand } from "./mdserver_cli.ts";
import type { CommandResult } from "./process.ts";
import type { Report } from "./report.ts";
import { ADMIN_SOCKET } from "./settings.ts";

/** `mdserver wait NAME`, started after `virsh start`: what it did, and when it returned. */
export interface Waited extends CommandResult {
  /** performance.now() when it returned. */
  at: number;
}

/** Starts `mdserver wait NAME --timeout S` in the background; never rejects. */
export function startWait(name: string, timeoutMs: number): Promise<Waited> {
  const seconds = Math.ceil(timeoutMs / 1000);
  return mdserverCommand(["wait", name, "--timeout", String(seconds)], timeoutMs + 30_000).then(
    (result) => ({ ...result, at: performance.now() }),
    (error) => ({
      code: -1,
      stdout: "",
      stderr: error instanceof Error ? error.message : String(error),
      timedOut: false,
      ms: 0,
      at: performance.now(),
    }),
  );
}

/** One boot as GET /v1/instances/NAME shows it (`boot`, `boots`). */
interface BootJson {
  seq: number;
  cause: string;
  state: string;
  opened_at: string;
  metadata_at: string | null;
  user_data_at: string | null;
  stages: Record<string, { result: string | null; finished_at: string | null }>;
  problem: { stage: string; module: string; message: string } | null;
  ended_at: string | null;
  events: number;
  dropped: number;
}

/** The stages a boot that reached `done` must have seen finish (init-local never reports: docs/boot-events.md). */
const REPORTED_STAGES = ["init-network", "modules-config", "modules-final"];

/**
 * Checks `mdserver wait` and the boot's outcome; returns the boot's seq
 * (null when there was no boot to read). `booted.fetches`: whether the
 * guest fetches its metadata over HTTP (not the config drive guest's,
 * whose boot goes from registered to cloud-init's stages with no fetch).
 * `previousSeq`: the first boot's,
 * on the second boot, whose boot must be a new one with the first kept in
 * the history.
 */
export async function checkBootOutcome(
  report: Report,
  run: string,
  prefix: string,
  name: string,
  booted: { waiting: Promise<Waited>; started: number; fetches: boolean },
  previousSeq: number | null,
): Promise<number | null> {
  const step = (text: string) => prefix + text;
  const waited = await booted.waiting;
  const started = booted.started;
  const output = (waited.stdout + waited.stderr).trim().replace(/\s+/g, " ");
  report.timed(
    run,
    step("mdserver wait NAME, started after virsh start: exit 0 once the boot is done"),
    (waited.at - started) / 1000,
    waited.code === 0,
    `exit ${waited.code}${waited.timedOut ? " (killed)" : ""}: ${output.slice(0, 300) || "(no output)"}`,
  );

  let shown: { boot: BootJson | null; boots?: BootJson[] };
  try {
    shown = await adminJson(ADMIN_SOCKET, `/v1/instances/${encodeURIComponent(name)}`);
  } catch (error) {
    report.check(run, step("the boot is done, from cloud-init's own events"), false, String(error));
    return null;
  }
  const boot = shown.boot;
  if (boot === null) {
    report.check(run, step("the boot is done, from cloud-init's own events"), false, "the instance has no boot");
    return null;
  }
  const stages = REPORTED_STAGES.map((stage) => `${stage} ${boot.stages[stage]?.result ?? "not reported"}`);
  const allSucceeded = REPORTED_STAGES.every((stage) => boot.stages[stage]?.result === "SUCCESS") &&
    Object.values(boot.stages).every((record) => record.result === null || record.result === "SUCCESS");
  const seconds = boot.ended_at ? (Date.parse(boot.ended_at) - Date.parse(boot.opened_at)) / 1000 : null;
  report.timed(
    run,
    step("the boot is done, from cloud-init's own events"),
    seconds,
    boot.state === "done" && boot.problem === null && boot.dropped === 0 && boot.events > 0 && allSucceeded &&
      (boot.metadata_at !== null && boot.user_data_at !== null) === booted.fetches,
    `boot #${boot.seq} (${boot.cause}): ${boot.state}; ${
      boot.metadata_at === null ? "no fetch" : "fetched"
    }; ${boot.events} events, ${boot.dropped} dropped; ${stages.join(", ")}${
      boot.problem ? `; problem ${boot.problem.stage}/${boot.problem.module}: ${boot.problem.message}` : ""
    }`,
  );
  if (previousSeq !== null) {
    const kept = shown.boots ?? [];
    const earlier = kept.find((kept) => kept.seq === previousSeq);
    report.check(
      run,
      step("a new boot, the first one kept in the history"),
      boot.seq > previousSeq && earlier?.state === "done",
      `current #${boot.seq}; boots kept: ${kept.map((one) => `#${one.seq} ${one.state}`).join(", ")}`,
    );
  }
  return boot.seq;
}
