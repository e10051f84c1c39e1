/**
 * Request bodies, read whole before the handler runs and never past the
 * body cap: a Content-Length body straight into an array of its size, a
 * chunked one chunk by chunk into an array that grows up to the cap.
 * Chunk-size lines are hex digits, optionally `;` extensions, CRLF; chunk
 * data ends in CRLF; trailer fields are read (bounded) and dropped.
 *
 * @module
 */

import type { BufferedConn } from "./_buffered_conn.ts";
import type { HeadRefusal } from "./_head.ts";

const CR = 0x0d;
const LF = 0x0a;

/** Longest chunk-size line (with extensions) or trailer line, bytes. */
const MAX_CHUNK_LINE_BYTES = 1024;

/** Thrown when the peer closes before the body is complete. */
export class IncompleteBody extends Error {}

/** Reads exactly `length` bytes of body. */
export async function readFixedBody(conn: BufferedConn, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const body = new Uint8Array(length);
  let got = Math.min(length, conn.buffered);
  body.set(conn.buffer.subarray(conn.start, conn.start + got));
  conn.start += got;
  while (got < length) {
    const count = await conn.conn.read(body.subarray(got));
    if (count === null) throw new IncompleteBody("connection closed inside a body");
    got += count;
  }
  return body;
}

/** Reads a chunked body of at most `maxBytes`, or the refusal to answer. */
export async function readChunkedBody(
  conn: BufferedConn,
  maxBytes: number,
  maxTrailerBytes: number,
): Promise<Uint8Array<ArrayBuffer> | HeadRefusal> {
  let body = new Uint8Array(Math.min(maxBytes, 4096));
  let length = 0;
  for (;;) {
    const line = await readLine(conn);
    if (typeof line !== "number") return line;
    const size = chunkSize(conn.buffer, conn.start, line);
    conn.start = line + 2;
    if (size < 0) return { status: 400, reason: "malformed", message: "bad chunk size" };
    if (size === 0) break;
    if (length + size > maxBytes) return { status: 413, reason: "body_too_large", message: "body too large" };
    if (length + size > body.length) {
      const grown = new Uint8Array(Math.min(maxBytes, Math.max(body.length * 2, length + size)));
      grown.set(body.subarray(0, length));
      body = grown;
    }
    let need = size;
    while (need > 0) {
      if (conn.buffered === 0 && (await conn.readMore(MAX_CHUNK_LINE_BYTES)) === null) {
        throw new IncompleteBody("connection closed inside a chunk");
      }
      const take = Math.min(need, conn.buffered);
      body.set(conn.buffer.subarray(conn.start, conn.start + take), length);
      conn.start += take;
      length += take;
      need -= take;
    }
    while (conn.buffered < 2) {
      if ((await conn.readMore(MAX_CHUNK_LINE_BYTES)) === null) {
        throw new IncompleteBody("connection closed in a chunk");
      }
    }
    if (conn.buffer[conn.start] !== CR || conn.buffer[conn.start + 1] !== LF) {
      return { status: 400, reason: "malformed", message: "chunk data not followed by CRLF" };
    }
    conn.start += 2;
  }
  // Trailer fields up to an empty line, each a name and a colon at least.
  let trailerBytes = 0;
  for (;;) {
    const line = await readLine(conn);
    if (typeof line !== "number") return line;
    const lineStart = conn.start;
    conn.start = line + 2;
    if (line === lineStart) break;
    trailerBytes += line - lineStart + 2;
    if (trailerBytes > maxTrailerBytes) return { status: 431, reason: "head_too_large", message: "trailers too large" };
    const colon = conn.buffer.subarray(lineStart, line).indexOf(0x3a);
    if (colon <= 0) return { status: 400, reason: "malformed", message: "bad trailer field" };
  }
  return body.subarray(0, length);
}

/**
 * Waits until the buffer holds a whole line; returns the index of its CR,
 * or a refusal (bare LF or CR, or a line past the cap).
 */
async function readLine(conn: BufferedConn): Promise<number | HeadRefusal> {
  let scanned = 0;
  for (;;) {
    const { buffer, start, end } = conn;
    for (let i = start + scanned; i < end; i++) {
      const c = buffer[i];
      if (c === LF) return { status: 400, reason: "malformed", message: "bare LF in chunked body" };
      if (c === CR) {
        if (i + 1 === end) break;
        if (buffer[i + 1] !== LF) return { status: 400, reason: "malformed", message: "bare CR in chunked body" };
        return i;
      }
      scanned = i - start + 1;
    }
    if (end - start >= MAX_CHUNK_LINE_BYTES) {
      return { status: 400, reason: "malformed", message: "chunk line too long" };
    }
    if ((await conn.readMore(MAX_CHUNK_LINE_BYTES * 2)) === null) {
      throw new IncompleteBody("connection closed inside a chunked body");
    }
  }
}

/** The size of a chunk-size line `buffer[start, end)`: hex digits, then nothing or `;`-extensions; -1 if bad. */
function chunkSize(buffer: Uint8Array, start: number, end: number): number {
  let size = 0;
  let i = start;
  for (; i < end; i++) {
    const c = buffer[i]!;
    const digit = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : -1;
    if (digit < 0) break;
    if (i - start >= 8) return -1;
    size = size * 16 + digit;
  }
  if (i === start) return -1;
  while (i < end && (buffer[i] === 0x20 || buffer[i] === 0x09)) i++;
  if (i < end && buffer[i] !== 0x3b) return -1;
  for (; i < end; i++) {
    const c = buffer[i]!;
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return -1;
  }
  return size;
}
