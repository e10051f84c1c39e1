/**
 * How the CLI shows a boot: a progress bar by step, the elapsed time, the
 * outcome with the module and message of its problem (`watch`, `wait`), and
 * the timeline with durations (`show`). Pure: the admin API's boot JSON in,
 * text out; callers escape control characters (names and messages come
 * from guests) as they print.
 *
 * @module
 */

/** A boot as the admin API shows it (snake_case, see docs/boot-events.md). */
export interface BootView {
  seq: number;
  cause: string;
  state: string;
  opened_at: string;
  metadata_at: string | null;
  user_data_at: string | null;
  stages: Record<string, { started_at: string; finished_at: string | null; result: string | null }>;
  problem: { stage: string; module: string; result: string; message: string; at: string } | null;
  ended_at: string | null;
  events: number;
  dropped: number;
  last_event: string | null;
}

/** One instance's line of GET /v1/boots. */
export interface BootEntry {
  name: string;
  uuid: string;
  ipv4: string;
  instance_state: string;
  boot: BootView | null;
}

/** The steps of a boot before its outcome, in order: one cell of the bar each. */
const STEPS = [
  "registered",
  "metadata fetched",
  "user-data fetched",
  "init-local",
  "init-network",
  "modules-config",
  "modules-final",
];

/** Whether the boot has ended. */
export function isEnded(boot: BootView | null): boolean {
  return boot !== null && (boot.state === "done" || boot.state === "degraded" || boot.state === "failed");
}

/** `1m05s`, `45.2s`, `2h03m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "-";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

function between(from: string, to: string | null, now: Date): number {
  return ((to === null ? now.getTime() : Date.parse(to)) - Date.parse(from)) / 1000;
}

/** `[#####--]`: the steps reached; full once the boot has ended. */
export function progressBar(boot: BootView | null): string {
  const reached = boot === null ? 0 : isEnded(boot) ? STEPS.length : STEPS.indexOf(boot.state) + 1;
  return `[${"#".repeat(reached)}${"-".repeat(STEPS.length - reached)}]`;
}

/** The problem as one line: `modules-config/config-runcmd: running config-runcmd …`. */
export function problemText(boot: BootView): string {
  if (boot.problem === null) return boot.dropped > 0 ? `${boot.dropped} events dropped by the limits` : "";
  const where = boot.problem.module === boot.problem.stage
    ? boot.problem.stage
    : `${boot.problem.stage}/${boot.problem.module}`;
  return `${where}: ${boot.problem.message}`;
}

/** One instance as `watch` shows it: name, address, bar, state, elapsed, and the problem of an ended boot. */
export function watchLine(entry: BootEntry, now: Date, nameWidth = 0): string {
  const boot = entry.boot;
  const name = entry.name.padEnd(nameWidth);
  if (boot === null) return `${name}  ${entry.ipv4.padEnd(15)}  ${progressBar(null)}  no boot seen`;
  const state = entry.instance_state === "stopped" && !isEnded(boot) ? "stopped" : boot.state;
  const elapsed = formatDuration(between(boot.opened_at, boot.ended_at, now));
  const problem = isEnded(boot) ? problemText(boot) : "";
  return `${name}  ${entry.ipv4.padEnd(15)}  ${progressBar(boot)}  ${state.padEnd(17)}  ${elapsed.padStart(7)}${
    problem ? `  ${problem}` : ""
  }`.trimEnd();
}

/** What a line says apart from the clock: a piped `watch` prints a line when this changes. */
export function changeKey(entry: BootEntry): string {
  const boot = entry.boot;
  return JSON.stringify([entry.instance_state, boot?.seq, boot?.state, boot?.problem, boot?.dropped]);
}

/** The boot's timeline for `show`: each step with its time after the start and each stage's duration. */
export function timelineRows(boot: BootView, now: Date): string[][] {
  const after = (at: string) => `+${formatDuration(between(boot.opened_at, at, now))}`;
  const rows: string[][] = [[`boot ${boot.seq}`, `${boot.opened_at.replace(/\.\d+Z$/, "Z")} (${boot.cause})`]];
  if (boot.metadata_at) rows.push(["metadata fetched", after(boot.metadata_at)]);
  if (boot.user_data_at) rows.push(["user-data fetched", after(boot.user_data_at)]);
  for (const [stage, record] of Object.entries(boot.stages)) {
    const took = formatDuration(between(record.started_at, record.finished_at, now));
    rows.push([
      stage,
      `${after(record.started_at)}  ${record.finished_at === null ? `running ${took}` : `${took} ${record.result}`}`,
    ]);
  }
  rows.push([
    "state",
    isEnded(boot)
      ? `${boot.state} after ${formatDuration(between(boot.opened_at, boot.ended_at, now))}`
      : `${boot.state} (${formatDuration(between(boot.opened_at, null, now))} so far)`,
  ]);
  const problem = problemText(boot);
  if (problem) rows.push(["problem", problem]);
  rows.push(["events", `${boot.events}${boot.dropped > 0 ? ` (${boot.dropped} dropped)` : ""}`]);
  return rows;
}
