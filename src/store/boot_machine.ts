/**
 * One state machine per boot, pure: what a boot is and how it moves.
 *
 * ```
 * start (upload) ─► registered ─► metadata fetched ─► user-data fetched
 *   ─► init-local ─► init-network ─► modules-config ─► modules-final
 *   ─► done | degraded | failed
 * ```
 *
 * The fetches come from the guest's GETs; the stages from cloud-init's own
 * webhook reporter (its `reporting:` events, see parseReportingEvent). A
 * boot moves only forward: the furthest step seen is its state. The finish
 * of `modules-final` ends it: `failed` when any event had the result FAIL,
 * `degraded` for a WARN (or events the limits dropped), else `done`; the
 * first FAIL (else the first WARN) is kept as the boot's problem, with the
 * module and the message cloud-init gave. An event of an earlier stage than
 * the boot reached, or any stage but modules-final after the end, is a
 * guest that booted again without a new start (a reboot from inside): it
 * opens a new boot.
 *
 * @module
 */

/** cloud-init's boot stages, in the order they run. */
export const STAGES = ["init-local", "init-network", "modules-config", "modules-final"] as const;

/** One of cloud-init's boot stages. */
export type Stage = typeof STAGES[number];

/** How a boot ended. */
export type BootOutcome = "done" | "degraded" | "failed";

/** Where a boot is: the furthest step seen, or how it ended. */
export type BootPhase = "registered" | "metadata fetched" | "user-data fetched" | Stage | BootOutcome;

/** Every phase in order, the outcomes last. */
export const PHASES: readonly BootPhase[] = [
  "registered",
  "metadata fetched",
  "user-data fetched",
  ...STAGES,
  "done",
  "degraded",
  "failed",
];

/** What opened a boot. */
export type BootCause = "start" | "guest reboot" | "first event";

/** What cloud-init said of one stage. */
export interface StageRecord {
  /** First event of the stage (its start, or a module's when the start was not reported). */
  startedAt: string;
  /** Its finish event, or null while it runs. */
  finishedAt: string | null;
  /** The finish event's result (SUCCESS, WARN, FAIL), or null while it runs. */
  result: string | null;
}

/** The first thing that went wrong in a boot. */
export interface BootProblem {
  /** The stage it happened in. */
  stage: string;
  /** The module (e.g. `config-runcmd`) or the stage itself. */
  module: string;
  /** WARN or FAIL. */
  result: string;
  /** cloud-init's description of the event. */
  message: string;
  /** When it was reported. */
  at: string;
}

/** One boot of an instance. */
export interface Boot {
  /** 1 for an instance's first boot seen, then counting up. */
  seq: number;
  /** What opened it. */
  cause: BootCause;
  /** When it was opened. */
  openedAt: string;
  /** Where it is. */
  phase: BootPhase;
  /** First metadata fetch of this boot. */
  metadataAt: string | null;
  /** First user-data fetch of this boot. */
  userDataAt: string | null;
  /** What each stage reported. */
  stages: Partial<Record<Stage, StageRecord>>;
  /** The first FAIL, else the first WARN. */
  problem: BootProblem | null;
  /** When it reached done, degraded or failed. */
  endedAt: string | null;
  /** Events taken. */
  events: number;
  /** Events refused by the limits (per-boot count, rate). */
  dropped: number;
  /** Name of the latest event taken (e.g. `modules-config/config-runcmd`). */
  lastEvent: string | null;
}

/** A cloud-init reporting event, as its webhook reporter posts it. */
export interface ReportingEvent {
  /** `start` or `finish`. */
  eventType: "start" | "finish";
  /** `<stage>` or `<stage>/<module or step>`. */
  name: string;
  /** Its description. */
  description: string;
  /** SUCCESS, WARN or FAIL (finish events). */
  result: string | null;
  /** The stage, when the name starts with one. */
  stage: Stage | null;
}

/** A new boot. */
export function openBoot(seq: number, cause: BootCause, at: string): Boot {
  return {
    seq,
    cause,
    openedAt: at,
    phase: "registered",
    metadataAt: null,
    userDataAt: null,
    stages: {},
    problem: null,
    endedAt: null,
    events: 0,
    dropped: 0,
    lastEvent: null,
  };
}

/** Whether a boot has ended. */
export function isFinal(phase: BootPhase): phase is BootOutcome {
  return phase === "done" || phase === "degraded" || phase === "failed";
}

function rank(phase: BootPhase): number {
  return PHASES.indexOf(phase);
}

/** The phase that is further on. */
function furthest(a: BootPhase, b: BootPhase): BootPhase {
  return rank(b) > rank(a) ? b : a;
}

/** The boot after a guest's metadata or user-data fetch. */
export function noteFetch(boot: Boot, kind: "metadata" | "user-data", at: string): Boot {
  if (isFinal(boot.phase)) return boot;
  if (kind === "metadata") {
    if (boot.metadataAt !== null) return boot;
    return { ...boot, metadataAt: at, phase: furthest(boot.phase, "metadata fetched") };
  }
  if (boot.userDataAt !== null) return boot;
  return {
    ...boot,
    metadataAt: boot.metadataAt ?? at,
    userDataAt: at,
    phase: furthest(boot.phase, "user-data fetched"),
  };
}

/**
 * Where an event belongs: `this` boot, a `new` one (the guest booted again
 * without a start), or `stale` (a late repeat after the boot ended; dropped).
 */
export function eventBelongs(boot: Boot, event: ReportingEvent): "this" | "new" | "stale" {
  if (event.stage === null) return isFinal(boot.phase) ? "stale" : "this";
  const stageRank = STAGES.indexOf(event.stage);
  if (isFinal(boot.phase)) return event.stage === "modules-final" ? "stale" : "new";
  const reached = STAGES.findLastIndex((stage) => boot.stages[stage] !== undefined);
  return stageRank < reached ? "new" : "this";
}

/** The boot after one of cloud-init's events (that belongs to it, see eventBelongs). */
export function applyEvent(boot: Boot, event: ReportingEvent, at: string): Boot {
  const next: Boot = { ...boot, stages: { ...boot.stages }, events: boot.events + 1, lastEvent: event.name };
  const { stage } = event;
  if (stage === null) return next;
  const record = next.stages[stage] ?? { startedAt: at, finishedAt: null, result: null };
  const whole = event.name === stage;
  if (whole && event.eventType === "finish") {
    next.stages[stage] = { ...record, finishedAt: at, result: event.result };
  } else {
    next.stages[stage] = record;
  }
  next.phase = furthest(next.phase, stage);
  if (event.eventType === "finish" && (event.result === "FAIL" || event.result === "WARN")) {
    const problem: BootProblem = {
      stage,
      module: whole ? stage : event.name.slice(stage.length + 1),
      result: event.result,
      message: event.description,
      at,
    };
    if (next.problem === null || (next.problem.result === "WARN" && event.result === "FAIL")) {
      next.problem = problem;
    }
  }
  if (whole && event.eventType === "finish" && stage === "modules-final") {
    next.phase = outcome(next);
    next.endedAt = at;
  }
  return next;
}

/** The boot with `count` more events refused by the limits. */
export function noteDropped(boot: Boot, count = 1): Boot {
  return { ...boot, dropped: boot.dropped + count };
}

/** How a boot whose last stage finished ended. */
function outcome(boot: Boot): BootOutcome {
  if (boot.problem?.result === "FAIL") return "failed";
  if (boot.problem !== null || boot.dropped > 0) return "degraded";
  return "done";
}

/**
 * Longest event name and description kept (cloud-init's are far shorter):
 * with [events] history at its most (20), the instance's boots stay well
 * inside one KV value (64 KiB).
 */
const MAX_NAME = 200;
const MAX_TEXT = 500;

/**
 * A cloud-init reporting event from the webhook's JSON body
 * (`{"name", "description", "event_type", "origin", "timestamp", "result"}`),
 * or the reason it is not one.
 */
export function parseReportingEvent(body: string): ReportingEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return "the body is not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "the body is not a JSON object";
  const fields = value as Record<string, unknown>;
  const { name, description, event_type: eventType, result } = fields;
  if (eventType !== "start" && eventType !== "finish") return `event_type must be "start" or "finish"`;
  if (typeof name !== "string" || name === "" || name.length > MAX_NAME) return "name must be a short string";
  if (typeof description !== "string") return "description must be a string";
  if (eventType === "finish" && result !== "SUCCESS" && result !== "WARN" && result !== "FAIL") {
    return "a finish event's result must be SUCCESS, WARN or FAIL";
  }
  const first = name.split("/")[0]!;
  const stage = (STAGES as readonly string[]).includes(first) ? first as Stage : null;
  return {
    eventType,
    name: clean(name),
    description: clean(description.slice(0, MAX_TEXT)),
    result: eventType === "finish" ? result as string : null,
    stage,
  };
}

/** Text with control characters replaced, so it is safe in a log line or a terminal. */
function clean(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, "?");
}
