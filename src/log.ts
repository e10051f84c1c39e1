/**
 * The one place that writes log lines: one line per event, to stderr.
 * Under journald (JOURNAL_STREAM set) lines carry a syslog priority prefix
 * and no timestamp, since the journal adds its own.
 *
 * @module
 */

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warning" | "error";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };
const PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warning: 4, error: 3 };

/** A logger: one call, one line. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
}

/** Options of a logger writing to a stream. */
export interface LoggerOptions {
  level?: LogLevel | string;
  /** Journald mode: priority prefix, no timestamp. Default: JOURNAL_STREAM is set. */
  journald?: boolean;
  write?: (line: string) => void;
  now?: () => Date;
}

/** A logger writing lines at or above a level. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = normaliseLevel(options.level ?? "info");
  const journald = options.journald ?? detectJournald();
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const now = options.now ?? (() => new Date());
  const emit = (at: LogLevel) => (message: string) => {
    if (RANK[at] < RANK[level]) return;
    const text = message.replaceAll("\n", "\\n");
    write(
      journald ? `<${PRIORITY[at]}>${text}` : `${now().toISOString()} ${at.toUpperCase()} ${text}`,
    );
  };
  return { debug: emit("debug"), info: emit("info"), warning: emit("warning"), error: emit("error") };
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
