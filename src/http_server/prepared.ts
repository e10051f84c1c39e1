/**
 * Answers prepared ahead: a status, header fields and a body made into the
 * bytes of a response once, so that serving one again is a single write.
 * The server asks an {@linkcode AnswerAhead} about every body-less request
 * before it makes a Request: a prepared answer is written at once (no
 * Request, no Response, no promise of the handler's); `null` sends the
 * request on to the handler as usual.
 *
 * The bytes after the Date field are kept for the two usual framings (kept
 * alive, and closing), and the whole response for the current second: an
 * answer asked again within the second (one many guests share) is written
 * from the same buffer.
 *
 * @module
 */

import { date, reasonPhrase } from "./_response.ts";

const encoder = new TextEncoder();

/** What an AnswerAhead is asked: the parsed head of a request without a body. */
export interface AheadRequest {
  /** The method, as sent. */
  readonly method: string;
  /** The origin-form target (`/a/b?c`), as sent (an absolute-form target's path). */
  readonly path: string;
  /** Header fields in order, names lower-cased. */
  readonly headers: readonly (readonly [string, string])[];
}

/**
 * Answers a request from what was prepared, synchronously, or null to let
 * the handler answer it. `source` is the peer's address. It must not throw
 * (a throw is reported as a handler error and the handler answers).
 */
export type AnswerAhead = (request: AheadRequest, source: string) => PreparedAnswer | null;

/** The value of a header field of a request (names are lower-case), or null. */
export function headerOf(request: AheadRequest, name: string): string | null {
  const headers = request.headers;
  for (let i = 0; i < headers.length; i++) {
    if (headers[i]![0] === name) return headers[i]![1];
  }
  return null;
}

/** The Date header's bytes, made again when its second moves on. */
let dateLine = "";
let dateBytes = new Uint8Array(0);

function dateField(): Uint8Array {
  const line = date();
  if (line !== dateLine) {
    dateLine = line;
    dateBytes = encoder.encode(line);
  }
  return dateBytes;
}

/** Status lines by status (`HTTP/1.1 200 OK\r\n`), shared by every answer of that status. */
const statusLines = new Map<number, Uint8Array>();

function statusLine(status: number): Uint8Array {
  let line = statusLines.get(status);
  if (line === undefined) {
    statusLines.set(status, line = encoder.encode(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`));
  }
  return line;
}

/** A response made ahead: written as it is, with the server's Date, Content-Length and Connection. */
export class PreparedAnswer {
  /** The status code. */
  readonly status: number;
  /** The body's bytes. */
  readonly body: Uint8Array;
  /** `HTTP/1.1 status reason\r\n`. */
  readonly #statusLine: Uint8Array;
  /** The header fields after Date, Content-Length included, each ending in CRLF (ASCII). */
  readonly #fields: string;
  /** Whole responses of the two usual framings, for the Date field they hold (made on first use). */
  #wireDate: Uint8Array | null = null;
  #wireKeptAlive: Uint8Array | null = null;
  #wireClosing: Uint8Array | null = null;

  /**
   * An answer of `status` with these header fields (Date, Content-Length,
   * Connection and Transfer-Encoding are the server's) and this body.
   */
  constructor(status: number, headers: Record<string, string>, body: string | Uint8Array) {
    this.status = status;
    this.body = typeof body === "string" ? encoder.encode(body) : body;
    this.#statusLine = statusLine(status);
    let fields = "";
    for (const name in headers) {
      const value = headers[name]!;
      const lower = name.toLowerCase();
      if (lower === "date" || lower === "content-length" || lower === "connection" || lower === "transfer-encoding") {
        continue;
      }
      if (/[^\t\x20-\x7e]/.test(name + value)) throw new TypeError(`header ${name}: only printable ASCII here`);
      fields += `${lower}: ${value}\r\n`;
    }
    this.#fields = `${fields}content-length: ${this.body.length}\r\n`;
  }

  /**
   * The response's bytes: `close` adds `connection: close`, `keepAlive10`
   * `connection: keep-alive` (HTTP/1.0), `head` leaves the body out.
   */
  bytes(close: boolean, keepAlive10: boolean, head: boolean): Uint8Array {
    const field = dateField();
    if (!head && !keepAlive10) {
      // The two usual framings: whole responses kept for the current second (answers shared by many guests).
      if (this.#wireDate !== field) {
        this.#wireDate = field;
        this.#wireKeptAlive = this.#wireClosing = null;
      }
      if (close) return this.#wireClosing ??= this.#wire(field, "connection: close\r\n", true);
      return this.#wireKeptAlive ??= this.#wire(field, "", true);
    }
    const connection = close ? "connection: close\r\n" : keepAlive10 ? "connection: keep-alive\r\n" : "";
    return this.#wire(field, connection, !head);
  }

  /** Status line, Date field, the other fields, the framing, the blank line and (unless HEAD) the body: one buffer. */
  #wire(field: Uint8Array, connection: string, withBody: boolean): Uint8Array {
    const status = this.#statusLine;
    const fields = `${this.#fields}${connection}\r\n`;
    const bodyAt = status.length + field.length + fields.length;
    const out = new Uint8Array(bodyAt + (withBody ? this.body.length : 0));
    out.set(status, 0);
    out.set(field, status.length);
    // The fields are ASCII: as many bytes as characters.
    encoder.encodeInto(fields, out.subarray(status.length + field.length, bodyAt));
    if (withBody) out.set(this.body, bodyAt);
    return out;
  }
}
