/**
 * What cloud-init takes a document or part to be from its first bytes: the
 * same markers as cloud-init's `INCLUSION_TYPES_MAP`, matched as its
 * `type_from_starts_with` matches them (lower-cased, leading white space
 * dropped, longest marker first). Identical in 22.4 and 25.x.
 *
 * @module
 */

/** cloud-init's start-of-document markers and the content type each means, longest first. */
const MARKERS: readonly [string, string][] = [
  ["#cloud-config-archive", "text/cloud-config-archive"],
  ["#cloud-config-jsonp", "text/cloud-config-jsonp"],
  ["## template: jinja", "text/jinja2"],
  ["#cloud-boothook", "text/cloud-boothook"],
  ["#include-once", "text/x-include-once-url"],
  ["#cloud-config", "text/cloud-config"],
  ["#part-handler", "text/part-handler"],
  ["#include", "text/x-include-url"],
  ["#!", "text/x-shellscript"],
];

/** How far into a document the markers are looked for (the longest marker after plenty of white space). */
const SCAN = 4096;

/** The content type cloud-init gives a document by its start (`#cloud-config…`, `#!`…), or null for none. */
export function typeFromStart(body: string): string | null {
  const start = body.slice(0, SCAN).trimStart().toLowerCase();
  for (const [marker, type] of MARKERS) {
    if (start.startsWith(marker)) return type;
  }
  return null;
}
