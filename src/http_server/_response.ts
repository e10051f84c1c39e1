/**
 * Responses on the wire: the status line and headers as one string, encoded
 * with the body into one buffer and written at once; a Date header cached per
 * second; Content-Length for a body known whole, chunked transfer coding (or
 * close-delimited, for HTTP/1.0) for a stream. Connection, Content-Length
 * and Transfer-Encoding from the handler are replaced by the server's own.
 *
 * @module
 */

import type { BufferedConn } from "./_buffered_conn.ts";

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  417: "Expectation Failed",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
};

/** The reason phrase of a status ("Unknown" for one not listed). */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Unknown";
}

/** Headers the server writes itself. */
const OWN_HEADERS = new Set(["connection", "content-length", "transfer-encoding", "date", "keep-alive"]);

const encoder = new TextEncoder();
let dateSecond = 0;
let dateLine = "";

/** `date: <IMF-fixdate>\r\n`, recomputed once a second (the same string within a second). */
export function date(): string {
  const now = Date.now();
  const second = now - (now % 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `date: ${new Date(second).toUTCString()}\r\n`;
  }
  return dateLine;
}

/** How the response ends its connection. */
export interface ResponseFraming {
  /** HTTP/1.`minor` of the request. */
  minor: number;
  /** Close the connection after this response. */
  close: boolean;
  /** Say `connection: keep-alive` (HTTP/1.0 keep-alive). */
  keepAlive10: boolean;
  /** A HEAD request: headers only. */
  head: boolean;
}

/**
 * Whether a Response's body is known whole (a string or bytes, not a
 * stream), so that `bytes()` hands it over at once and no stream is made.
 * Reading `response.body` would turn a whole body into a stream; Deno's
 * own server looks at the Response's internal slots instead, and so does
 * this, looking only: a string kept aside (`lazy static body`), or an inner
 * body whose source is not a ReadableStream. When a Deno version keeps them
 * elsewhere, every body takes the stream path: slower, the same bytes.
 */
const RESPONSE_SLOTS = (() => {
  const symbols = Object.getOwnPropertySymbols(new Response(""));
  return {
    lazyString: symbols.find((symbol) => symbol.description === "lazy static body"),
    inner: symbols.find((symbol) => symbol.description === "response"),
  };
})();

function hasWholeBody(response: Response): boolean {
  const slots = response as unknown as Record<symbol, unknown>;
  if (RESPONSE_SLOTS.lazyString !== undefined && typeof slots[RESPONSE_SLOTS.lazyString] === "string") return true;
  if (RESPONSE_SLOTS.inner === undefined) return false;
  const inner = slots[RESPONSE_SLOTS.inner] as { body?: { streamOrStatic?: unknown } | null } | undefined;
  const source = inner?.body?.streamOrStatic;
  return typeof source === "object" && source !== null && !(source instanceof ReadableStream);
}

/** Whether a status never has a body. */
function bodiless(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

function headText(response: Response, framing: ResponseFraming, length: string | null): string {
  const status = response.status;
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? (response.statusText || "Unknown")}\r\n${date()}`;
  // The public Headers only: Deno keeps some headers (a string body's Content-Type among them) outside its
  // internal header list, so reading that list lost them.
  for (const [name, value] of response.headers) {
    if (!OWN_HEADERS.has(name)) text += `${name}: ${value}\r\n`;
  }
  if (length !== null) text += length;
  if (framing.close) text += "connection: close\r\n";
  else if (framing.keepAlive10) text += "connection: keep-alive\r\n";
  return text + "\r\n";
}

/** The head and `body` in one buffer (Latin-1 for header bytes beyond ASCII). */
function encode(text: string, body: Uint8Array | null): Uint8Array {
  const bodyLength = body === null ? 0 : body.length;
  const out = new Uint8Array(text.length + bodyLength);
  const { written } = encoder.encodeInto(text, out);
  if (written !== text.length) {
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  }
  if (body !== null && bodyLength > 0) out.set(body, text.length);
  return out;
}

/** A small response the server makes itself (refusals): status, a one-line text body, then close. */
export function plainResponse(status: number, message: string, close = true): Uint8Array {
  const body = encoder.encode(`${message}\n`);
  const text =
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n${date()}content-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n`;
  return encode(text, body);
}

/**
 * Writes a handler's response; a body known whole goes out with the head in
 * one write. Returns whether the connection must close now.
 */
export async function writeResponse(
  conn: BufferedConn,
  response: Response,
  framing: ResponseFraming,
  writeTimeoutMs: number,
): Promise<boolean> {
  const stringBody = hasWholeBody(response);
  const stream = stringBody ? undefined : response.body;
  if (stream === null || bodiless(response.status)) {
    if (stream) await stream.cancel().catch(() => {});
    const length = bodiless(response.status) ? null : "content-length: 0\r\n";
    await conn.writeAll(encode(headText(response, framing, length), null), writeTimeoutMs);
    return framing.close;
  }
  if (stringBody) {
    // A whole body: bytes() hands it over without a stream.
    const body = await response.bytes();
    const text = headText(response, framing, `content-length: ${body.length}\r\n`);
    await conn.writeAll(encode(text, framing.head ? null : body), writeTimeoutMs);
    return framing.close;
  }
  const reader = stream!.getReader();
  let first: ReadableStreamReadResult<Uint8Array>;
  let second: ReadableStreamReadResult<Uint8Array> | null = null;
  try {
    first = await reader.read();
    if (!first.done) second = await reader.read();
  } catch (error) {
    reader.releaseLock();
    throw error;
  }
  if (first.done || second?.done) {
    // The whole body is here: a string or bytes body, or a stream of one chunk.
    const body = first.done ? null : first.value;
    const length = body === null ? 0 : body.length;
    const text = headText(response, framing, `content-length: ${length}\r\n`);
    await conn.writeAll(encode(text, framing.head ? null : body), writeTimeoutMs);
    return framing.close;
  }
  if (framing.head) {
    await reader.cancel().catch(() => {});
    await conn.writeAll(encode(headText(response, framing, null), null), writeTimeoutMs);
    return framing.close;
  }
  // A stream: chunked for HTTP/1.1, delimited by the close for HTTP/1.0.
  conn.noDelay();
  const chunked = framing.minor === 1;
  const streamFraming = chunked ? framing : { ...framing, close: true, keepAlive10: false };
  await conn.writeAll(
    encode(headText(response, streamFraming, chunked ? "transfer-encoding: chunked\r\n" : null), null),
    writeTimeoutMs,
  );
  const pending = [first, second!];
  try {
    for (;;) {
      const chunk = pending.shift() ?? await reader.read();
      if (chunk.done) break;
      if (chunk.value.length === 0) continue;
      await conn.writeAll(chunked ? chunkFrame(chunk.value) : chunk.value, writeTimeoutMs);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  if (chunked) await conn.writeAll(LAST_CHUNK, writeTimeoutMs);
  return streamFraming.close;
}

const LAST_CHUNK = encoder.encode("0\r\n\r\n");

function chunkFrame(data: Uint8Array): Uint8Array {
  const size = `${data.length.toString(16)}\r\n`;
  const out = new Uint8Array(size.length + data.length + 2);
  encoder.encodeInto(size, out);
  out.set(data, size.length);
  out[out.length - 2] = 0x0d;
  out[out.length - 1] = 0x0a;
  return out;
}
