/**
 * A reader for the INI dialect of Python's `configparser`, which md_server
 * used (through Bottle's `ConfigDict.load_config`), so that its files read
 * the same here.
 *
 * - `[section]` headers; `key = value` or `key: value`; keys are lower-cased.
 * - Whole-line comments start with `#` or `;`; there are no inline comments.
 * - A line indented deeper than its key continues the value (joined by "\n").
 * - `%%` stands for `%` (configparser's basic interpolation); no other
 *   interpolation is done.
 * - A duplicate section or key in one file is an error, as in configparser.
 *
 * @module
 */

/** One key and its value, with where it was read. */
export interface IniEntry {
  /** The section the key is in. */
  section: string;
  /** The key, lower-cased. */
  key: string;
  /** The value, continuation lines joined by "\n". */
  value: string;
  /** The file it was read from. */
  file: string;
  /** The line of the key, from 1. */
  line: number;
}

/** The entries of one INI document, in file order. */
export interface IniDocument {
  /** The file it was read from. */
  file: string;
  /** Every key, in file order. */
  entries: IniEntry[];
  /** Every section header with its line, in file order (empty sections too). */
  headers: { section: string; line: number }[];
}

/** Parses INI text; throws SyntaxError naming the file and line. */
export function parseIni(text: string, file: string): IniDocument {
  const entries: IniEntry[] = [];
  const sections: string[] = [];
  const headers: { section: string; line: number }[] = [];
  const seen = new Set<string>();
  let section: string | null = null;
  let current: IniEntry | null = null;
  let currentIndent = 0;

  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const trimmed = raw.trim();
    const indent = raw.length - raw.trimStart().length;

    if (trimmed === "") {
      current = null;
      return;
    }
    if (trimmed.startsWith("#") || trimmed.startsWith(";")) return;

    if (current !== null && indent > currentIndent) {
      current.value = current.value === "" ? unescapePercent(trimmed) : `${current.value}\n${unescapePercent(trimmed)}`;
      return;
    }

    const header = /^\[([^\]]+)\]$/.exec(trimmed);
    if (header) {
      section = header[1]!.trim();
      if (sections.includes(section)) {
        throw new SyntaxError(
          `Cannot parse config "${file}": line ${lineNo}: section "[${section}]" appears twice`,
        );
      }
      sections.push(section);
      headers.push({ section, line: lineNo });
      current = null;
      return;
    }

    const separator = firstSeparator(trimmed);
    if (separator < 0) {
      throw new SyntaxError(
        `Cannot parse config "${file}": line ${lineNo}: expected "key = value", got "${trimmed}"`,
      );
    }
    if (section === null) {
      throw new SyntaxError(
        `Cannot parse config "${file}": line ${lineNo}: "${trimmed}" comes before any [section] header`,
      );
    }
    const key = trimmed.slice(0, separator).trim().toLowerCase();
    if (key === "") {
      throw new SyntaxError(
        `Cannot parse config "${file}": line ${lineNo}: empty key in "${trimmed}"`,
      );
    }
    const id = `${section}\u0000${key}`;
    if (seen.has(id)) {
      throw new SyntaxError(
        `Cannot parse config "${file}": line ${lineNo}: key "${key}" appears twice in [${section}]`,
      );
    }
    seen.add(id);
    current = {
      section,
      key,
      value: unescapePercent(trimmed.slice(separator + 1).trim()),
      file,
      line: lineNo,
    };
    currentIndent = indent;
    entries.push(current);
  });
  return { file, entries, headers };
}

function firstSeparator(line: string): number {
  const equals = line.indexOf("=");
  const colon = line.indexOf(":");
  if (equals < 0) return colon;
  if (colon < 0) return equals;
  return Math.min(equals, colon);
}

function unescapePercent(value: string): string {
  return value.replaceAll("%%", "%");
}
