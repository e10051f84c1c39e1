/**
 * Batching log lines: a busy server logs a line per request, so lines that
 * come in quick succession are gathered and written together on the next
 * turn of the event loop, which spares one system call (and one wake-up of
 * journald) per line. A line after a quiet spell is written at once, and
 * urgent lines (warnings, errors) are never held.
 *
 * @module
 */

/** Lines closer together than this (ms) are batched. */
export const BATCH_WITHIN_MS = 1;

/** Lines held at most before a write, whatever the timer. */
export const BATCH_MAX_LINES = 256;

/** A sink like `Deno.stderr.writeSync`: writes some of the bytes, says how many. */
export type WriteSync = (bytes: Uint8Array) => number;

/** A batching line writer. */
export interface BatchWriter {
  /** Writes a line now, or holds it for the next turn of the event loop; `urgent` writes it and every held line now. */
  write(line: string, urgent: boolean): void;
  /** Writes every held line now. */
  flush(): void;
}

/**
 * A writer over a sink. The timer keeps the process alive until the lines
 * are out; whoever owns the sink flushes at exit.
 */
export function batchWriter(sink: WriteSync, now: () => number = () => performance.now()): BatchWriter {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastWrite = -Infinity;
  const writeAll = (text: string) => {
    const bytes = encoder.encode(text);
    let written = 0;
    while (written < bytes.length) written += sink(bytes.subarray(written));
    lastWrite = now();
  };
  const flush = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const lines = pending;
    pending = [];
    if (lines.length > 0) writeAll(lines.join("\n") + "\n");
  };
  const write = (line: string, urgent: boolean) => {
    if (urgent) {
      pending.push(line);
      flush();
      return;
    }
    if (timer === null && now() - lastWrite > BATCH_WITHIN_MS) {
      writeAll(line + "\n");
      return;
    }
    pending.push(line);
    if (pending.length >= BATCH_MAX_LINES) flush();
    else timer ??= setTimeout(flush, 0);
  };
  return { write, flush };
}
