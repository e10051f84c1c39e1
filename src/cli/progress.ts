/**
 * Progress of a long operation on standard error: on a terminal one line
 * rewritten in place, elsewhere (the journal, a pipe) a line per report.
 * An empty report ends it (clears the terminal line).
 *
 * @module
 */

/** A progress printer writing to `write`; `terminal` picks the in-place form. */
export function progressPrinter(write: (text: string) => void, terminal: boolean): (text: string) => void {
  return (text) => {
    if (terminal) write(text === "" ? "\r\x1b[K" : `\r${text}\x1b[K`);
    else if (text !== "") write(`${text}\n`);
  };
}
