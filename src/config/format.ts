/**
 * The effective configuration as INI text: what `check-config` prints.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { splitId } from "./problems.ts";

const SECRET_KEYS = ["mdserver.password"];

/** The effective configuration as INI text, secrets masked; what check-config prints. */
export function formatConfig(config: Config): string {
  const sections = new Map<string, string[]>();
  for (const [id, value] of config.raw) {
    const [section, key] = splitId(id);
    if (section === "_include_") continue;
    const shown = SECRET_KEYS.includes(id) ? "********" : value;
    const lines = sections.get(section) ?? [];
    lines.push(`${key} = ${shown.replaceAll("\n", "\n    ")}`);
    sections.set(section, lines);
  }
  const parts = [`# files read: ${config.files.join(", ")}`];
  for (const warning of config.warnings) parts.push(`# warning: ${warning}`);
  for (const [section, lines] of sections) {
    parts.push(`\n[${section}]\n${lines.join("\n")}`);
  }
  return parts.join("\n") + "\n";
}
