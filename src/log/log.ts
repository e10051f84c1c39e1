/**
 * The one place that writes log lines: one line per event, to stderr.
 * Under journald (JOURNAL_STREAM set) lines carry a syslog priority prefix
 * and no timestamp, since the journal adds its own.
 *
 * A busy server logs a line per request, so lines that come in quick
 * succession are written together once per turn of the event loop (see
 * stderrWriter); a line after a quiet spell is written at once.
 *
 * @module
 */

import { batchWriter } from "./_batch_writer.ts";

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warning" | "error";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };
const PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warning: 4, error: 3 };

/** A logger: one call, one line. */
export interface Logger {
  /** Logs a line at debug level. */
  debug(message: string): void;
  /** Logs a line at info level. */
  info(message: string): void;
  /** Logs a line at warning level (written at once). */
  warning(message: string): void;
  /** Logs a line at error level (written at once). */
  error(message: string): void;
}

/** Options of a logger writing to a stream. */
export interface LoggerOptions {
  /** Lowest level written; default info. */
  level?: LogLevel | string;
  /** Journald mode: priority prefix, no timestamp. Default: JOURNAL_STREAM is set. */
  journald?: boolean;
  /** Where lines go; default stderr, batched. */
  write?: (line: string) => void;
  /** The clock for timestamps. */
  now?: () => Date;
}

/** A logger writing lines at or above a level. */
export function createLogger(options: LoggerOptions = {}): ReloadableLogger {
  let level = normaliseLevel(options.level ?? "info");
  const journald = options.journald ?? detectJournald();
  const custom = options.write;
  const write: (line: string, urgent: boolean) => void = custom ? (line) => custom(line) : stderrWriter();
  const now = options.now ?? (() => new Date());
  // The wall clock's ISO text, made once per millisecond (a busy server logs several lines in one).
  let stampMs = NaN;
  let stamp = "";
  const timestamp = options.now ? () => now().toISOString() : () => {
    const ms = Date.now();
    if (ms !== stampMs) {
      stampMs = ms;
      stamp = new Date(ms).toISOString();
    }
    return stamp;
  };
  const emit = (at: LogLevel) => (message: string) => {
    if (RANK[at] < RANK[level]) return;
    const text = clip(message.replaceAll("\n", "\\n"));
    write(
      journald ? `<${PRIORITY[at]}>${text}` : `${timestamp()} ${at.toUpperCase()} ${text}`,
      RANK[at] >= RANK.warning,
    );
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warning: emit("warning"),
    error: emit("error"),
    setLevel(next: string) {
      level = normaliseLevel(next);
    },
  };
}

/** A logger whose level a configuration reload can change. */
export interface ReloadableLogger extends Logger {
  /** Sets the lowest level written ("debug", "info", "warning", "error"). */
  setLevel(level: string): void;
}

/** Writes lines to stderr, batched (see _batch_writer.ts); flushed when the process exits. */
function stderrWriter(): (line: string, urgent: boolean) => void {
  const writer = batchWriter((bytes) => Deno.stderr.writeSync(bytes));
  globalThis.addEventListener("unload", () => writer.flush());
  return (line, urgent) => writer.write(line, urgent);
}

/** A logger that drops everything, for tests that do not look at logs. */
export const silentLogger: Logger = { debug() {}, info() {}, warning() {}, error() {} };

function normaliseLevel(level: string): LogLevel {
  const value = level.toLowerCase();
  if (value === "critical") return "error";
  return value in RANK ? value as LogLevel : "info";
}

function detectJournald(): boolean {
  try {
    return Deno.env.get("JOURNAL_STREAM") !== undefined;
  } catch {
    return false;
  }
}

/** Longest log line kept, in characters: a 64 KiB request path must not become a 64 KiB line. */
export const MAX_LOG_LINE = 2048;

function clip(text: string): string {
  return text.length <= MAX_LOG_LINE
    ? text
    : `${text.slice(0, MAX_LOG_LINE)}… (${text.length - MAX_LOG_LINE} more characters)`;
}
