/**
 * The `yaml` package looks up `LOG_TOKENS` and `LOG_STREAM` in
 * `process.env` for every token it reads (its debug output). Under Deno each
 * lookup is a permission-checked call into the runtime: more than half the
 * time of parsing a cloud-config (measured: 1,360 → 604 µs for the sample
 * template). A parse is synchronous, so it runs with `process.env` set to an
 * empty object and set back before anything else can run; nothing else
 * sees the difference, and the package's debug output (never wanted in a
 * server) stays off.
 *
 * @module
 */

import process from "node:process";

const QUIET: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** Whether process.env can be set for the duration of a call (it can in Deno 2 and Node). */
const SWAPPABLE = Object.getOwnPropertyDescriptor(process, "env")?.writable === true;

/** Runs `parse` (synchronous) with an empty `process.env`. */
export function withQuietEnv<T>(parse: () => T): T {
  if (!SWAPPABLE) return parse();
  const saved = process.env;
  process.env = QUIET;
  try {
    return parse();
  } finally {
    process.env = saved;
  }
}
