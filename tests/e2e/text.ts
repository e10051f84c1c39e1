/**
 * Small text helpers of the e2e report: console lines without terminal
 * escapes, the last lines of a log, shortened keys, regex escaping.
 *
 * @module
 */

/** The serial console's lines, without terminal escapes and blank lines. */
export function consoleLines(text: string): string[] {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split(/\r?\n|\r/).map((line) => line.trim()).filter(Boolean);
}

/** The last count lines, joined with " | ". */
export function lastLines(lines: string[], count: number): string {
  return lines.slice(-count).join(" | ");
}

/** A key shortened for the report. */
export function short(key: string | null): string {
  return key === null ? "none" : `${key.slice(0, 24)}…${key.slice(-8)}`;
}

/** Text escaped for use in a regular expression. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
