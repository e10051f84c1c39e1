/**
 * Problems in a configuration, each located by file, section and key.
 *
 * @module
 */

import type { IniEntry } from "./ini.ts";

/** One problem in a configuration, located by file, section and key. */
export interface ConfigProblem {
  /** The file at fault. */
  file: string;
  /** The section at fault, or "-" for the file as a whole. */
  section: string;
  /** The key at fault, or null for a section or file. */
  key: string | null;
  /** What is wrong, with the line or "(default value)". */
  message: string;
}

/** Thrown when a configuration cannot be used; lists every problem found. */
export class ConfigError extends Error {
  /** Every problem found. */
  readonly problems: ConfigProblem[];
  /** The error listing the problems, one a line. */
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Formats a problem as `file: [section] key: message`. */
export function formatProblem(problem: ConfigProblem): string {
  if (problem.section === "-") return `${problem.file}: ${problem.message}`;
  const where = problem.key === null ? `[${problem.section}]` : `[${problem.section}] ${problem.key}`;
  return `${problem.file}: ${where}: ${problem.message}`;
}

/**
 * A problem with a key: located at the line that set it, or marked as the
 * default value when no file set it.
 */
export function located(
  values: Map<string, IniEntry>,
  section: string,
  key: string,
  message: string,
  fallbackFile: string,
): ConfigProblem {
  const entry = values.get(`${section}.${key}`);
  return entry
    ? { file: entry.file, section, key, message: `${message} (line ${entry.line})` }
    : { file: fallbackFile, section, key, message: `${message} (default value)` };
}

/** A `section.key` id split into section and key. */
export function splitId(id: string): [string, string] {
  const dot = id.indexOf(".");
  return [id.slice(0, dot), id.slice(dot + 1)];
}
