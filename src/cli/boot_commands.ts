/**
 * `mdserver wait NAME… [--timeout S]` and `mdserver watch`, over the admin
 * API's long-poll of boots (GET /v1/boots?after=V&wait=S).
 *
 * `wait` blocks until each named instance's current boot has ended: exit 0
 * when all are done, 1 when any is degraded or failed (a line each with the
 * module and message), 124 when the timeout passes first — the host's twin
 * of `cloud-init status --wait`. `watch` shows every instance's current
 * boot, a line each: on a terminal redrawn in place (elapsed times tick),
 * piped one line per change.
 *
 * @module
 */

import { AdminError, callAdmin } from "./admin_client.ts";
import { type BootEntry, changeKey, isEnded, problemText, watchLine } from "./boot_view.ts";
import type { AdminEndpoint } from "../admin/endpoint.ts";
import { escapeControls } from "./ctl.ts";

/** What the boot commands need. */
export interface BootCommandDeps {
  /** The configuration naming the admin endpoint. */
  configFile: string;
  /** Writes one line of output. */
  print(line: string): void;
  /** Writes raw text (watch on a terminal). */
  write?: (text: string) => void;
  /** Whether standard output is a terminal (watch redraws in place). */
  terminal?: boolean;
  /** The terminal's width: longer lines are cut there, so none wraps and the redraw stays in place. */
  columns?: () => number;
  /** The clock; default the wall clock. */
  now?: () => Date;
  /** Ends `watch` (tests; a person presses Ctrl-C). */
  signal?: AbortSignal;
  /** Reads the admin endpoint; default readAdminEndpoint. */
  readEndpoint?: (file: string) => Promise<AdminEndpoint>;
}

/** Exit status of `wait` when the timeout passed first (as timeout(1)). */
export const WAIT_TIMEOUT_STATUS = 124;

/** The long-poll's own wait per request, in seconds. */
const POLL_S = 5;

interface BootsAnswer {
  version: number;
  instances: BootEntry[];
}

async function poll(deps: BootCommandDeps, after: number, waitS: number): Promise<BootsAnswer> {
  const response = await callAdmin({
    configFile: deps.configFile,
    path: after < 0 ? "/v1/boots" : `/v1/boots?after=${after}&wait=${waitS}`,
    timeoutMs: (waitS + 10) * 1000,
    ...(deps.readEndpoint ? { readEndpoint: deps.readEndpoint } : {}),
  });
  return await response.json() as BootsAnswer;
}

/** Finds the named instances among the entries: by name, UUID or address. */
function pick(entries: BootEntry[], refs: string[]): Map<string, BootEntry | undefined> {
  return new Map(refs.map((ref) => [ref, entries.find((e) => e.name === ref || e.uuid === ref || e.ipv4 === ref)]));
}

/** Runs `wait`; returns the exit status. */
export async function waitForBoots(refs: string[], timeoutS: number, deps: BootCommandDeps): Promise<number> {
  const now = () => (deps.now ?? (() => new Date()))().getTime();
  const deadline = now() + timeoutS * 1000;
  let answer = await poll(deps, -1, 0);
  const unknown = [...pick(answer.instances, refs)].filter(([, entry]) => entry === undefined).map(([ref]) => ref);
  if (unknown.length > 0) {
    throw new AdminError(`no instance ${unknown.map((r) => `"${r}"`).join(", ")} (see: mdserver list)`, true);
  }
  let unreachable = false;
  for (let round = 0; round < 1_000_000; round++) {
    const picked = [...pick(answer.instances, refs).values()] as BootEntry[];
    if (picked.every((entry) => isEnded(entry.boot))) return report(picked, deps);
    const left = deadline - now();
    if (left <= 0) {
      for (const entry of picked.filter((e) => !isEnded(e.boot))) {
        deps.print(escapeControls(`${entry.name}: still ${entry.boot?.state ?? "without a boot"} after ${timeoutS}s`));
      }
      return WAIT_TIMEOUT_STATUS;
    }
    try {
      answer = await poll(deps, answer.version, Math.max(0.1, Math.min(POLL_S, left / 1000)));
      unreachable = false;
    } catch (error) {
      // A restarting service: try again until the deadline, said once.
      if (!(error instanceof AdminError) || error.notFound) throw error;
      if (!unreachable) deps.print(`(${error.message}; trying again)`);
      unreachable = true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, Math.max(0, deadline - now()))));
    }
  }
  return WAIT_TIMEOUT_STATUS;
}

function report(entries: BootEntry[], deps: BootCommandDeps): number {
  let status = 0;
  for (const entry of entries) {
    const boot = entry.boot!;
    if (boot.state === "done") continue;
    status = 1;
    deps.print(escapeControls(`${entry.name}: ${boot.state}: ${problemText(boot)}`));
  }
  return status;
}

/** Runs `watch` until deps.signal aborts (or, piped, the service goes away for good); returns the exit status. */
export async function watchBoots(deps: BootCommandDeps): Promise<number> {
  const now = deps.now ?? (() => new Date());
  const write = deps.write ?? ((text: string) => deps.print(text));
  const keys = new Map<string, string>();
  let drawn = 0;
  let answer: BootsAnswer = { version: -1, instances: [] };
  let status = "";
  const draw = () => {
    const entries = [...answer.instances].sort((a, b) => a.name.localeCompare(b.name));
    const nameWidth = Math.max(4, ...entries.map((entry) => entry.name.length));
    if (deps.terminal) {
      const lines = [
        `mdserver watch  ${entries.filter((e) => isEnded(e.boot)).length}/${entries.length} ended  ${
          now().toISOString().replace(/\.\d+Z$/, "Z")
        }${status ? `  ${status}` : ""}`,
        ...entries.map((entry) => escapeControls(watchLine(entry, now(), nameWidth))),
      ];
      // Back to the first line drawn, each line rewritten and cleared to its end; leftovers cleared.
      // Lines are cut to the width: a wrapped line would take two rows and the redraw would creep down.
      const width = Math.max(20, deps.columns?.() ?? 80) - 1;
      const fit = (line: string) => line.length > width ? `${line.slice(0, width - 1)}…` : line;
      const up = drawn > 0 ? `\x1b[${drawn}A\r` : "";
      write(`${up}${lines.map((line) => `${fit(line)}\x1b[K`).join("\n")}\n\x1b[J`);
      drawn = lines.length;
      return;
    }
    for (const entry of entries) {
      const key = changeKey(entry);
      if (keys.get(entry.uuid) === key) continue;
      keys.set(entry.uuid, key);
      deps.print(
        `${now().toISOString().replace(/\.\d+Z$/, "Z")}  ${escapeControls(watchLine(entry, now(), nameWidth))}`,
      );
    }
  };
  const aborted = new Promise<void>((resolve) => deps.signal?.addEventListener("abort", () => resolve()));
  let pending: Promise<unknown> = Promise.resolve();
  for (let round = 0; round < 100_000_000 && !deps.signal?.aborted; round++) {
    try {
      // On a terminal the clock ticks each second; piped, only changes matter.
      const next = poll(deps, answer.version, deps.terminal ? 1 : POLL_S);
      pending = next.catch(() => {});
      const got = await Promise.race([next, aborted.then(() => null)]);
      if (got === null) break;
      answer = got;
      status = "";
    } catch (error) {
      if (!(error instanceof AdminError) || error.notFound) throw error;
      if (!deps.terminal && status === "") deps.print(`(${error.message}; trying again)`);
      status = "(service unreachable, trying again)";
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 1000)), aborted]);
    }
    draw();
  }
  await pending;
  return 0;
}
