/**
 * One HTTP/1.1 request over a connection of its own (`connection: close`),
 * the answer read to its end: what the libvirt hook sends to the admin API.
 * It uses `Deno.connect` and nothing of fetch, whose first use costs a new
 * process about 10 ms of start-up (Request, Response, Headers and the streams
 * implementation), as long as the rest of the hook's work.
 *
 * It knows only what the admin API answers: a status line, header fields,
 * and a body sized by `content-length`, chunked, or ended by the close.
 *
 * @module
 */

import { readBytesFrom } from "../io/read_text.ts";

/** Largest answer read; the admin API's answers to the hook are a few hundred bytes. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/** Where to connect: a unix socket, or a TCP address. */
export type Http1Target =
  | { transport: "unix"; path: string }
  | { transport: "tcp"; hostname: string; port: number };

/** One request. */
export interface Http1Request {
  /** HTTP method. */
  method: string;
  /** The request target (`/v1/instances`). */
  path: string;
  /** The Host field. */
  host: string;
  /** Further header fields. */
  headers?: Record<string, string>;
  /** Request body (sent as UTF-8 with its length). */
  body?: string;
  /** Aborts the request: the connection is closed and the signal's reason thrown. */
  signal?: AbortSignal;
}

/** The answer. */
export interface Http1Answer {
  /** Status code. */
  status: number;
  /** The status line's reason phrase. */
  statusText: string;
  /** Header fields, names in lower case; a repeated field's values joined with ", ". */
  headers: Map<string, string>;
  /** The body as UTF-8 text. */
  body: string;
}

/** The place a target names, for messages: `unix:/run/mdserver/admin.sock`, `127.0.0.1:8774`. */
export function targetName(target: Http1Target): string {
  if (target.transport === "unix") return `unix:${target.path}`;
  return target.hostname.includes(":") ? `[${target.hostname}]:${target.port}` : `${target.hostname}:${target.port}`;
}

/**
 * Sends one request and reads the whole answer. Throws the signal's reason
 * on abort, and an Error naming the place for anything else (cannot connect,
 * closed before an answer, an answer that is not HTTP/1.x); Deno's
 * permission errors are thrown as they are.
 */
export async function http1Request(
  target: Http1Target,
  request: Http1Request,
): Promise<Http1Answer> {
  const { signal } = request;
  signal?.throwIfAborted();
  const place = targetName(target);
  const connecting: Promise<Deno.Conn> = target.transport === "unix"
    ? Deno.connect({ transport: "unix", path: target.path })
    : Deno.connect({ hostname: target.hostname, port: target.port });
  let conn: Deno.Conn;
  try {
    conn = await abortable(connecting, signal);
  } catch (error) {
    // A connection made after the abort is closed at once.
    connecting.then((late) => late.close(), () => {});
    if (signal?.aborted || isPermissionError(error)) throw error;
    throw new Error(`${messageOf(error)} (${place})`);
  }
  const close = () => {
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  signal?.addEventListener("abort", close, { once: true });
  try {
    const encoder = new TextEncoder();
    const body = encoder.encode(request.body ?? "");
    const fields = { host: request.host, ...request.headers, "content-length": String(body.byteLength) };
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(fields)) head += `${name}: ${value}\r\n`;
    head += "connection: close\r\n\r\n";
    const headBytes = encoder.encode(head);
    const bytes = new Uint8Array(headBytes.byteLength + body.byteLength);
    bytes.set(headBytes);
    bytes.set(body, headBytes.byteLength);
    try {
      for (let written = 0; written < bytes.byteLength;) {
        written += await conn.write(bytes.subarray(written));
      }
    } catch (error) {
      signal?.throwIfAborted();
      throw new Error(`cannot send the request: ${messageOf(error)} (${place})`);
    }
    let answer: Uint8Array;
    try {
      answer = await readBytesFrom(conn, { limit: MAX_ANSWER_BYTES, what: `answer of ${place}`, signal });
    } catch (error) {
      signal?.throwIfAborted();
      throw error;
    }
    return parseAnswer(answer, place);
  } finally {
    signal?.removeEventListener("abort", close);
    close();
  }
}

/** Parses a whole HTTP/1.x answer. */
function parseAnswer(bytes: Uint8Array, place: string): Http1Answer {
  const end = headEnd(bytes);
  if (end < 0) {
    throw new Error(
      bytes.byteLength === 0 ? `closed without an answer (${place})` : `answer cut short in its head (${place})`,
    );
  }
  const lines = new TextDecoder().decode(bytes.subarray(0, end)).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!status) throw new Error(`not an HTTP/1.1 answer (${place})`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`malformed header field in the answer (${place})`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const before = headers.get(name);
    headers.set(name, before === undefined ? value : `${before}, ${value}`);
  }
  let body = bytes.subarray(end + 4);
  if (headers.get("transfer-encoding")?.toLowerCase() === "chunked") {
    body = unchunk(body, place);
  } else if (headers.has("content-length")) {
    const length = Number(headers.get("content-length"));
    if (!Number.isInteger(length) || length < 0) throw new Error(`bad content-length in the answer (${place})`);
    if (body.byteLength < length) throw new Error(`answer cut short in its body (${place})`);
    body = body.subarray(0, length);
  }
  return {
    status: Number(status[1]),
    statusText: status[2] ?? "",
    headers,
    body: new TextDecoder().decode(body),
  };
}

/** Where the head ends (the index of its blank line's CR LF CR LF), or -1. */
function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.byteLength; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

/** The body of a chunked answer. */
function unchunk(bytes: Uint8Array, place: string): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  let at = 0;
  while (true) {
    let lineEnd = at;
    while (lineEnd + 1 < bytes.byteLength && !(bytes[lineEnd] === 13 && bytes[lineEnd + 1] === 10)) lineEnd++;
    if (lineEnd + 1 >= bytes.byteLength) throw new Error(`answer cut short in its body (${place})`);
    const sizeText = new TextDecoder().decode(bytes.subarray(at, lineEnd)).split(";")[0]!.trim();
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`bad chunk size in the answer (${place})`);
    const length = parseInt(sizeText, 16);
    at = lineEnd + 2;
    if (length === 0) break;
    if (at + length > bytes.byteLength) throw new Error(`answer cut short in its body (${place})`);
    parts.push(bytes.subarray(at, at + length));
    size += length;
    at += length + 2;
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.byteLength;
  }
  return body;
}

/** The promise, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function isPermissionError(error: unknown): boolean {
  return error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
