/**
 * A small, strict HTTP/1.1 server for the listener every guest reaches,
 * built on `Deno.listen` so that each connection is bounded: guests are
 * hostile, and `Deno.serve` has no header, body or idle timeout, no
 * connection cap and no per-connection hook.
 *
 * It runs the handler signature of `Deno.serve`,
 * `(request, { remoteAddr }) => Response | Promise<Response>`.
 *
 * Design:
 * - One read buffer per connection (2 KiB, grown up to the head cap, reused
 *   for every request on it). The head is parsed byte by byte with lookup
 *   tables, decoded to text once; the request URL is built from the bound
 *   address and the request target, never from Host.
 * - The body is read whole, within its cap and timeout, before the handler
 *   runs: a handler never waits on a guest, so shutdown is bounded.
 * - One deadline per connection for what it waits on (head, body, idle,
 *   write); a sweeper closes connections past theirs every 100 ms.
 * - A response whose body is known whole (string, bytes, a one-chunk
 *   stream) is written with its head in one write with Content-Length; a
 *   longer stream is sent chunked (HTTP/1.1) or delimited by the close (1.0).
 * - Refusals answer their status with `connection: close` and close; they
 *   are counted by reason and reported in bursts (one log line per burst).
 * - The handler's Request is made lazily (method, URL, body readers from the
 *   parsed head; Headers on first use; a genuine Request behind any other
 *   member), as `Deno.serve` makes its own. The response writer looks at
 *   Deno's internal slots of a Response (only looks) to write a whole body
 *   and its header list without a stream or the sorting Headers iterator;
 *   without them it takes the public path, slower, the same bytes.
 * - CPU per request is about twice a constant `Deno.serve`'s (which parses
 *   and writes in Rust): see docs/http_server.md.
 *
 * Defaults (a lab host with a few hundred guests; every one is an option):
 *
 * | limit | default | beyond it |
 * | --- | --- | --- |
 * | `maxHeadBytes` | 8 KiB | 414 (line) / 431, close |
 * | `maxHeaders` | 64 | 431, close |
 * | `headTimeoutMs` | 5 s | close (also a connection that sends nothing) |
 * | `maxBodyBytes` | 64 KiB | 413 before reading, close |
 * | `bodyTimeoutMs` | 10 s | close |
 * | `idleTimeoutMs` | 15 s | close (counted as idle, not a refusal) |
 * | `writeTimeoutMs` | 10 s per write | close |
 * | `maxConnectionsPerSource` | 32 | 503, close at once |
 * | `maxConnections` | 1,000 | 503, close at once |
 * | `maxRequestsPerConnection` | 0 (none) | the last response says close |
 * | `shutdown({ deadlineMs })` | 5 s | every connection closed |
 *
 * Strictness: CRLF line ends only; no obs-fold; no space before a colon;
 * one Content-Length of digits only; Transfer-Encoding exactly `chunked`,
 * never with Content-Length, never in HTTP/1.0; exactly one Host in
 * HTTP/1.1 — otherwise 400 and close. CONNECT/TRACE/TRACK: 405. HTTP
 * versions other than 1.x (the HTTP/2 preface among them): 505. `Expect:
 * 100-continue` is honoured, any other Expect is 417. `Upgrade` is ignored
 * (the request is served as HTTP/1.1). Pipelined requests are answered in
 * order. The asterisk-form target (`OPTIONS *`) is refused with 400.
 *
 * @example
 * ```ts
 * import { serveGuests } from "./mod.ts";
 *
 * const server = serveGuests(
 *   { hostname: "127.0.0.1", port: 0, onRefusals: (report) => console.log(report) },
 *   (_request, info) => new Response(`hello ${info.remoteAddr.hostname}\n`),
 * );
 * await server.shutdown({ deadlineMs: 1000 });
 * ```
 *
 * @module
 */

export { type GuestServer, type GuestServerOptions, serveGuests, type ShutdownResult } from "./server.ts";
export { DEFAULT_LIMITS, DEFAULT_SHUTDOWN_DEADLINE_MS, resolveLimits, type ServerLimits } from "./options.ts";
export {
  formatRefusalReport,
  REFUSAL_REASONS,
  type RefusalCounts,
  type RefusalReason,
  type RefusalReport,
  type ServerStats,
} from "./stats.ts";
export type { GuestHandler } from "./_connection.ts";
export { type AheadRequest, type AnswerAhead, headerOf, PreparedAnswer } from "./prepared.ts";
