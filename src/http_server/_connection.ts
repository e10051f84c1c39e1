/**
 * The life of one connection: read a head (within the head timeout and cap),
 * read its body whole (within the body timeout and cap), run the handler,
 * write the response, and again while the connection is kept alive. Any
 * refusal answers its status with `connection: close` and ends the
 * connection; nothing a peer sends makes the loop throw.
 *
 * @module
 */

import { type BufferedConn, Phase } from "./_buffered_conn.ts";
import { IncompleteBody, readChunkedBody, readFixedBody } from "./_body.ts";
import { type HeadRefusal, isRequestHead, parseHead } from "./_head.ts";
import { GuestRequest } from "./_request.ts";
import { plainResponse, writeResponse } from "./_response.ts";
import type { AnswerAhead, PreparedAnswer } from "./prepared.ts";
import type { ServerLimits } from "./options.ts";
import type { ServerCounters } from "./stats.ts";

const CR = 0x0d;
const LF = 0x0a;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/** The handler signature the service uses (as `Deno.serve` runs it). */
export type GuestHandler = (request: Request, info: { remoteAddr: Deno.NetAddr }) => Response | Promise<Response>;

/** What a connection's loop needs from its server. */
export interface ConnectionContext {
  limits: ServerLimits;
  handler: GuestHandler;
  counters: ServerCounters;
  /** `http://host:port`, the base of every request URL (the Host header plays no part). */
  urlBase: string;
  /** True once shutdown has begun: responses then close their connection. */
  shuttingDown(): boolean;
  /** A handler threw or returned something other than a Response (answered 500). */
  onError(error: unknown): void;
  /** The body cap for a source: `limits.maxBodyBytes`, or more for the host's own (trusted) addresses. */
  maxBodyBytesFor(source: string): number;
  /** Asked first about every body-less request; null: the handler answers all. */
  answerAhead: AnswerAhead | null;
}

/** headEnd(): a line ends in LF without CR before it. */
const BARE_LF = -2;

/**
 * Index just past the first CRLF CRLF in `buffer[start, end)`, looking at
 * line ends from `from` on; -1 when there is none yet, BARE_LF when a line
 * ends in a bare LF (refused at once rather than left to the head timeout).
 */
function headEnd(buffer: Uint8Array, start: number, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    if (buffer[i] !== LF) continue;
    if (i === start || buffer[i - 1] !== CR) return BARE_LF;
    if (i - 3 >= start && buffer[i - 2] === LF && buffer[i - 3] === CR) return i + 1;
  }
  return -1;
}

/** 414 when the request line alone passes the cap, else 431. */
function headTooLarge(conn: BufferedConn, maxHeadBytes: number): HeadRefusal {
  const lineEnds = conn.buffer.subarray(conn.start, conn.start + maxHeadBytes).indexOf(LF) >= 0;
  return lineEnds
    ? { status: 431, reason: "head_too_large", message: "request head too large" }
    : { status: 414, reason: "head_too_large", message: "request line too long" };
}

/** Serves one connection until it closes; never throws. */
export async function serveConnection(conn: BufferedConn, context: ConnectionContext): Promise<void> {
  const { limits, counters } = context;
  const info = { remoteAddr: conn.remoteAddr };
  const maxBodyBytes = context.maxBodyBytesFor(conn.source);
  const refuse = async (refusal: HeadRefusal) => {
    counters.refuse(refusal.reason, conn.source);
    await conn.writeAll(plainResponse(refusal.status, refusal.message), limits.writeTimeoutMs);
  };
  try {
    for (;;) {
      // The head: skip empty lines before it, wait for its blank line.
      if (conn.buffered === 0) {
        conn.enter(Phase.Idle, conn.requests === 0 ? limits.headTimeoutMs : limits.idleTimeoutMs);
      } else conn.enter(Phase.Head, limits.headTimeoutMs);
      let scanned = 0;
      let end = -1;
      for (;;) {
        while (conn.buffered >= 2 && conn.buffer[conn.start] === CR && conn.buffer[conn.start + 1] === LF) {
          conn.start += 2;
          scanned = 0;
        }
        end = headEnd(conn.buffer, conn.start, conn.start + scanned, conn.end);
        if (end >= 0) break;
        if (end === BARE_LF) {
          await refuse({ status: 400, reason: "malformed", message: "bare LF in head" });
          return;
        }
        scanned = Math.max(0, conn.buffered - 3);
        if (conn.buffered >= limits.maxHeadBytes) {
          await refuse(headTooLarge(conn, limits.maxHeadBytes));
          return;
        }
        const count = await conn.readMore(limits.maxHeadBytes);
        if (count === null) {
          if (conn.buffered > 0) counters.refuse("incomplete", conn.source);
          return;
        }
        if (conn.phase === Phase.Idle) conn.enter(Phase.Head, limits.headTimeoutMs);
      }
      if (end - conn.start > limits.maxHeadBytes) {
        await refuse(headTooLarge(conn, limits.maxHeadBytes));
        return;
      }
      const head = parseHead(conn.buffer, conn.start, end, limits.maxHeaders);
      conn.start = end;
      if (!isRequestHead(head)) {
        await refuse(head);
        return;
      }

      // A request without a body that was answered ahead: one write, no Request, no handler.
      if (context.answerAhead !== null && head.contentLength <= 0 && !head.chunked) {
        let answer: PreparedAnswer | null = null;
        try {
          answer = context.answerAhead(head, conn.source);
        } catch (error) {
          context.onError(error);
        }
        if (answer !== null) {
          conn.requests++;
          counters.requests++;
          const close = head.close || context.shuttingDown() ||
            (limits.maxRequestsPerConnection > 0 && conn.requests >= limits.maxRequestsPerConnection);
          await conn.writeAll(answer.bytes(close, head.keepAlive10, head.method === "HEAD"), limits.writeTimeoutMs);
          if (close) return;
          continue;
        }
      }

      // The body, whole, before the handler runs.
      let body: Uint8Array<ArrayBuffer> | null = null;
      if (head.contentLength > maxBodyBytes) {
        await refuse({ status: 413, reason: "body_too_large", message: `request body over ${maxBodyBytes} bytes` });
        return;
      }
      if (head.contentLength > 0 || head.chunked) {
        conn.enter(Phase.Body, limits.bodyTimeoutMs);
        if (head.expectContinue && conn.buffered === 0) await conn.writeAll(CONTINUE, limits.writeTimeoutMs);
        conn.enter(Phase.Body, limits.bodyTimeoutMs);
        if (head.chunked) {
          const read = await readChunkedBody(conn, maxBodyBytes, limits.maxHeadBytes);
          if (!(read instanceof Uint8Array)) {
            await refuse(read);
            return;
          }
          body = read;
        } else {
          body = await readFixedBody(conn, head.contentLength);
        }
      }

      conn.enter(Phase.Handler, Infinity);
      const method = head.method;
      const noBody = body === null || body.length === 0 || method === "GET" || method === "HEAD";
      const request = new GuestRequest(method, context.urlBase, head.path, head.headers, noBody ? null : body);
      conn.requests++;
      counters.requests++;
      let response: Response;
      try {
        const answer = context.handler(request as Request, info);
        response = answer instanceof Response ? answer : await answer;
        if (!(response instanceof Response)) throw new TypeError("the handler did not return a Response");
      } catch (error) {
        context.onError(error);
        response = new Response("internal error\n", { status: 500 });
      }
      if (conn.closed) return;
      const close = head.close || context.shuttingDown() ||
        (limits.maxRequestsPerConnection > 0 && conn.requests >= limits.maxRequestsPerConnection);
      const mustClose = await writeResponse(
        conn,
        response,
        { minor: head.minor, close, keepAlive10: head.keepAlive10, head: head.method === "HEAD" },
        limits.writeTimeoutMs,
      );
      if (mustClose) return;
    }
  } catch (error) {
    // A read or write failed: the sweeper closed the connection (its reason
    // counts), the peer went away, or it closed inside a body.
    const why = conn.expired;
    if (why === "idle") counters.idleClosed++;
    else if (why !== null && why !== "shutdown") counters.refuse(why, conn.source);
    else if (error instanceof IncompleteBody || conn.phase === Phase.Body) counters.refuse("incomplete", conn.source);
  } finally {
    conn.close();
    conn.release();
  }
}
