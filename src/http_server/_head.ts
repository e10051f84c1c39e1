/**
 * The request head parser: request line and header fields, byte by byte
 * with lookup tables, strict where leniency lets requests be smuggled
 * (RFC 9112): CRLF line ends only, no obs-fold, no whitespace before a
 * colon, one Content-Length of digits only, Transfer-Encoding `chunked` alone
 * and never beside a Content-Length, one Host, Host required in HTTP/1.1.
 *
 * @module
 */

import type { RefusalReason } from "./stats.ts";

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** token characters (RFC 9110 §5.6.2). */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** Methods a Request cannot carry; answered 405. */
const REFUSED_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);

/** A parsed request head. */
export interface RequestHead {
  method: string;
  /** The origin-form path and query (`/a/b?c`), also for an absolute-form target. */
  path: string;
  /** HTTP/1.`minor`: 0 or 1 (a higher 1.x is read as 1.1). */
  minor: number;
  /** Header fields in order, names lower-cased, values without surrounding whitespace. */
  headers: [string, string][];
  /** The Content-Length, or -1 when there is none. */
  contentLength: number;
  chunked: boolean;
  /** The connection closes after this response (`Connection: close`, or HTTP/1.0 without keep-alive). */
  close: boolean;
  /** HTTP/1.0 asked for keep-alive (the response says it keeps the connection). */
  keepAlive10: boolean;
  /** `Expect: 100-continue`. */
  expectContinue: boolean;
}

/** Why a head was refused: the status to answer (the connection then closes). */
export interface HeadRefusal {
  status: number;
  reason: RefusalReason;
  /** A short reason for the response body and the log. */
  message: string;
}

const decoder = new TextDecoder();

function refuse(message: string, status = 400, reason: RefusalReason = "malformed"): HeadRefusal {
  return { status, reason, message };
}

/** Whether a value is a RequestHead rather than a refusal. */
export function isRequestHead(value: RequestHead | HeadRefusal): value is RequestHead {
  return (value as RequestHead).headers !== undefined;
}

/**
 * Parses `bytes[start, end)`, which ends with the blank line (CRLF CRLF).
 * Returns the head, or the status to refuse it with.
 */
export function parseHead(
  bytes: Uint8Array,
  start: number,
  end: number,
  maxHeaders: number,
): RequestHead | HeadRefusal {
  let i = start;
  // Request line: method SP request-target SP HTTP-version CRLF.
  while (TCHAR[bytes[i]!] === 1) i++;
  if (i === start || bytes[i] !== SP) return refuse("bad request line");
  const methodEnd = i++;
  const targetStart = i;
  for (let c = bytes[i]!; c > SP && c < 0x7f; c = bytes[++i]!);
  if (i === targetStart || bytes[i] !== SP) return refuse("bad request target");
  const targetEnd = i++;
  if (
    bytes[i] !== 0x48 || bytes[i + 1] !== 0x54 || bytes[i + 2] !== 0x54 || bytes[i + 3] !== 0x50 ||
    bytes[i + 4] !== 0x2f || bytes[i + 6] !== 0x2e || bytes[i + 8] !== CR || bytes[i + 9] !== LF
  ) return refuse("bad HTTP version");
  const major = bytes[i + 5]! - 0x30;
  const minorDigit = bytes[i + 7]! - 0x30;
  if (major < 0 || major > 9 || minorDigit < 0 || minorDigit > 9) return refuse("bad HTTP version");
  if (major !== 1) return refuse(`HTTP/${major}.${minorDigit} is not served here`, 505, "version");
  const minor = minorDigit === 0 ? 0 : 1;
  i += 10;

  // Header fields: name ":" OWS value OWS CRLF, until an empty line.
  const spans: number[] = [];
  let ascii = true;
  for (;;) {
    const first = bytes[i];
    if (first === CR) {
      if (bytes[i + 1] !== LF) return refuse("bare CR in head");
      i += 2;
      break;
    }
    if (first === SP || first === HTAB) return refuse("obsolete line folding");
    const nameStart = i;
    while (TCHAR[bytes[i]!] === 1) i++;
    if (i === nameStart || bytes[i] !== COLON) return refuse("bad header field name");
    const nameEnd = i++;
    while (bytes[i] === SP || bytes[i] === HTAB) i++;
    const valueStart = i;
    let valueEnd = i;
    for (;;) {
      const c = bytes[i]!;
      if (c > SP && c !== 0x7f) {
        if (c > 0x7f) ascii = false;
        valueEnd = ++i;
      } else if (c === SP || c === HTAB) i++;
      else break;
    }
    if (bytes[i] !== CR || bytes[i + 1] !== LF) return refuse("bad character in header field");
    i += 2;
    if (spans.length >= maxHeaders * 4) return refuse("too many header fields", 431, "too_many_headers");
    spans.push(nameStart, nameEnd, valueStart, valueEnd);
  }
  if (i !== end) return refuse("bad head end");

  const text = ascii ? decoder.decode(bytes.subarray(start, end)) : latin1(bytes.subarray(start, end));
  const method = text.slice(0, methodEnd - start);
  if (REFUSED_METHODS.has(method.toUpperCase())) return refuse(`method ${method} is not served here`, 405, "method");
  const path = originPath(text.slice(targetStart - start, targetEnd - start));
  if (path === null) return refuse("bad request target");

  const headers: [string, string][] = [];
  let contentLength = -1;
  let chunked = false;
  let sawTransferEncoding = false;
  let close = minor === 0;
  let keepAlive10 = false;
  let expectContinue = false;
  let hosts = 0;
  for (let k = 0; k < spans.length; k += 4) {
    const name = text.slice(spans[k]! - start, spans[k + 1]! - start).toLowerCase();
    const value = text.slice(spans[k + 2]! - start, spans[k + 3]! - start);
    headers.push([name, value]);
    switch (name) {
      case "content-length":
        if (contentLength !== -1) return refuse("more than one Content-Length");
        contentLength = digits(value);
        if (contentLength < 0) return refuse("bad Content-Length");
        break;
      case "transfer-encoding":
        if (sawTransferEncoding) return refuse("more than one Transfer-Encoding");
        sawTransferEncoding = true;
        if (value.toLowerCase() !== "chunked") return refuse("Transfer-Encoding other than chunked");
        chunked = true;
        break;
      case "host":
        hosts++;
        break;
      case "connection":
        for (const token of value.toLowerCase().split(",")) {
          const option = token.trim();
          if (option === "close") close = true;
          else if (option === "keep-alive" && minor === 0) {
            close = false;
            keepAlive10 = true;
          }
        }
        break;
      case "expect":
        if (value.toLowerCase() !== "100-continue") return refuse("unsupported Expect", 417, "expectation");
        expectContinue = minor === 1;
        break;
    }
  }
  if (sawTransferEncoding && contentLength !== -1) return refuse("both Content-Length and Transfer-Encoding");
  if (sawTransferEncoding && minor === 0) return refuse("Transfer-Encoding in HTTP/1.0");
  if (hosts > 1) return refuse("more than one Host");
  if (hosts === 0 && minor === 1) return refuse("no Host");
  if (keepAlive10 && close && minor === 0) keepAlive10 = false;
  return { method, path, minor, headers, contentLength, chunked, close, keepAlive10, expectContinue };
}

/** A run of decimal digits as a number, or -1 (empty, other characters, beyond 2^53). */
function digits(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  return Number(value);
}

/** The origin-form path of a request target (origin-form or absolute-form `http://…`), or null. */
function originPath(target: string): string | null {
  if (target.charCodeAt(0) === 0x2f) return target;
  if (target.length > 7 && target.slice(0, 7).toLowerCase() === "http://") {
    for (let i = 7; i < target.length; i++) {
      const c = target.charCodeAt(i);
      if (c === 0x2f) return target.slice(i);
      if (c === 0x3f) return `/${target.slice(i)}`;
    }
    return "/";
  }
  return null;
}

/** Bytes as Latin-1 text (header values may hold obs-text; Headers takes byte strings). */
function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return text;
}
