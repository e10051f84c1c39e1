/**
 * Functions templates reach as `__mds.*` (and `defined`, `get`, `yaml`):
 * Python truthiness and iteration for Bottle lines, and YAML-safe scalars
 * (the public-key lines come from config/public_keys.ts).
 *
 * @module
 */

/** Python's truth value, for Bottle's `% if`. */
export function truthy(value: unknown): boolean {
  if (Array.isArray(value) || typeof value === "string") {
    return value.length > 0;
  }
  if (value instanceof Map || value instanceof Set) return value.size > 0;
  if (typeof value === "object" && value !== null) {
    return Object.keys(value).length > 0;
  }
  return Boolean(value);
}

/** What Python's `for` walks: items of a list, keys of a dict. */
export function iterate(value: unknown): Iterable<unknown> {
  if (value === null || value === undefined) {
    throw new TypeError(`cannot iterate ${value}`);
  }
  if (typeof value === "string" || Array.isArray(value)) return value;
  if (value instanceof Map) return value.keys();
  if (typeof value === "object" && Symbol.iterator in value) {
    return value as Iterable<unknown>;
  }
  if (typeof value === "object") return Object.keys(value);
  throw new TypeError(`cannot iterate ${typeof value}`);
}

/** value as a YAML flow node that is valid whatever it contains. */
export function yamlScalar(value: unknown): string {
  if (value === undefined) {
    throw new ReferenceError("expression is undefined (a missing key?)");
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  // JSON is YAML, except that YAML wants C1 controls, line and paragraph
  // separators and BOMs escaped; those only occur inside strings.
  const json = JSON.stringify(value === null ? null : value) ?? "null";
  return json.replace(
    /[\u007f-\u009f\u2028\u2029\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
