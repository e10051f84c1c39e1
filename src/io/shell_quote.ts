/**
 * Quoting for POSIX sh: any text as one single-quoted word.
 *
 * @module
 */

/** A string as one single-quoted POSIX shell word (embedded quotes closed, escaped and reopened). */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
