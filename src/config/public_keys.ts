/**
 * The SSH keys of `[public-keys]` as the guest sees them: one value may
 * hold several keys, one per line.
 *
 * @module
 */

/** The key lines of one `[public-keys]` value: trimmed, blank lines and comments dropped. */
export function keyLines(key: string): string[] {
  return key.split("\n").map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"));
}

/**
 * Every key line of a set of named keys (a Map, or an object name → key, as
 * templates get it), in order; null or undefined has none.
 */
export function publicKeyLines(keys: unknown): string[] {
  if (keys === null || keys === undefined) return [];
  const values = keys instanceof Map ? [...keys.values()] : typeof keys === "object" ? Object.values(keys) : [keys];
  return values.flatMap((value) => keyLines(String(value)));
}
