/**
 * The one timestamp format of the CLI's output: RFC 3339, UTC, whole seconds.
 *
 * @module
 */

/** `2026-12-01T21:15:39Z` from any ISO time, or null when there is none. */
export function rfc3339(iso: string | null | undefined): string | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}
