/**
 * The guest HTTP server: a `Deno.listen` TCP listener, connection caps per
 * source address and in all, a sweeper that closes connections past their
 * deadline, and a shutdown with a deadline.
 *
 * @module
 */

import { BufferedConn, type Expiry, Phase } from "./_buffered_conn.ts";
import { type ConnectionContext, type GuestHandler, serveConnection } from "./_connection.ts";
import { plainResponse } from "./_response.ts";
import type { AnswerAhead } from "./prepared.ts";
import { DEFAULT_SHUTDOWN_DEADLINE_MS, resolveLimits, type ServerLimits } from "./options.ts";
import { type RefusalReason, type RefusalReport, ServerCounters, type ServerStats } from "./stats.ts";

/** Default body cap for trusted sources: 1 MiB, enough for any libvirt domain XML. */
const TRUSTED_BODY_BYTES = 1024 * 1024;

/** Options of {@linkcode serveGuests}. */
export interface GuestServerOptions {
  /** Address to bind, e.g. `169.254.169.254`. */
  hostname: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Limits; each missing one takes its default (see DEFAULT_LIMITS). */
  limits?: Partial<ServerLimits>;
  /** Base of request URLs; default `http://<hostname>:<port>` of the bound address. */
  urlBase?: string;
  /** Called with each burst of refusals (at most once per `reportIntervalMs`): one log line per burst. */
  onRefusals?: (report: RefusalReport) => void;
  /** Shortest time between two refusal reports, ms; default 10,000. */
  reportIntervalMs?: number;
  /** Called when the handler throws or returns no Response (the request is answered 500). */
  onError?: (error: unknown) => void;
  /**
   * Whether a source address is the host's own (loopback, the listen
   * address: md_server's `/instance-upload` callers): trusted sources are
   * not held to `maxConnectionsPerSource` (the global cap still holds) and
   * may send bodies up to `trustedBodyBytes`. Default: none is trusted.
   */
  trusted?: (address: string) => boolean;
  /** The body cap of a trusted source, bytes; default 1 MiB (a libvirt domain's XML). */
  trustedBodyBytes?: number;
  /**
   * Asked about every request without a body before the handler: a prepared
   * answer is written at once, null leaves the request to the handler.
   */
  answerAhead?: AnswerAhead;
}

/** What `shutdown()` did. */
export interface ShutdownResult {
  /** Connections still busy at the deadline, closed then. */
  closedAtDeadline: number;
  /** Milliseconds the shutdown took. */
  elapsedMs: number;
}

/** A running guest HTTP server. */
export interface GuestServer {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** The limits in force (defaults filled in). */
  readonly limits: Readonly<ServerLimits>;
  /** Counters: open connections, requests, refusals by reason. */
  stats(): ServerStats;
  /**
   * Stops accepting, closes idle connections and those still reading a head,
   * lets requests in flight (reading their body, in the handler, writing)
   * finish until the deadline, then closes every connection. Resolves by the
   * deadline (plus a sweep, 100 ms) whatever the clients or handlers do.
   */
  shutdown(options?: { deadlineMs?: number }): Promise<ShutdownResult>;
  /** Resolves once shutdown has finished. */
  readonly finished: Promise<void>;
}

/** How often the sweeper looks for connections past their deadline, ms. */
const SWEEP_INTERVAL_MS = 100;

/** Accept errors (EMFILE…) pause accepting this long before the next try, ms. */
const ACCEPT_BACKOFF_MS = 50;

/** A connection past its deadline: why it is closed, by phase. */
function expiryOf(conn: BufferedConn): Expiry {
  switch (conn.phase) {
    case Phase.Idle:
      return conn.requests === 0 ? "head_timeout" : "idle";
    case Phase.Head:
      return "head_timeout";
    case Phase.Body:
      return "body_timeout";
    case Phase.Write:
      return "write_timeout";
    default:
      return "shutdown";
  }
}

/**
 * Starts serving `handler` on a TCP address under the given limits.
 *
 * @example
 * ```ts
 * const server = serveGuests({ hostname: "127.0.0.1", port: 0 }, () => new Response("ok"));
 * await server.shutdown({ deadlineMs: 1000 });
 * ```
 */
export function serveGuests(options: GuestServerOptions, handler: GuestHandler): GuestServer {
  const limits = resolveLimits(options.limits);
  const counters = new ServerCounters({
    ...(options.onRefusals ? { onRefusals: options.onRefusals } : {}),
    ...(options.reportIntervalMs !== undefined ? { reportIntervalMs: options.reportIntervalMs } : {}),
  });
  const listener = Deno.listen({ hostname: options.hostname, port: options.port, transport: "tcp" });
  const addr = listener.addr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const open = new Set<BufferedConn>();
  const perSource = new Map<string, number>();
  const trusted = options.trusted ?? (() => false);
  const trustedBodyBytes = options.trustedBodyBytes ?? TRUSTED_BODY_BYTES;
  let shuttingDown = false;
  let allClosed: (() => void) | null = null;

  const context: ConnectionContext = {
    limits,
    handler,
    counters,
    urlBase: options.urlBase ?? `http://${host}:${addr.port}`,
    shuttingDown: () => shuttingDown,
    onError: options.onError ?? (() => {}),
    maxBodyBytesFor: (source) => trusted(source) ? trustedBodyBytes : limits.maxBodyBytes,
    answerAhead: options.answerAhead ?? null,
  };

  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const conn of open) {
      if (conn.deadline <= now) conn.expire(expiryOf(conn));
    }
  }, SWEEP_INTERVAL_MS);
  Deno.unrefTimer(sweeper);

  const refuseConnection = (conn: Deno.TcpConn, reason: RefusalReason, source: string) => {
    counters.refuse(reason, source);
    const message = reason === "source_cap" ? "too many connections from this address" : "too many connections";
    conn.write(plainResponse(503, message)).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // reset by the peer
      }
    });
  };

  const run = async (conn: BufferedConn) => {
    open.add(conn);
    counters.openConnections++;
    perSource.set(conn.source, (perSource.get(conn.source) ?? 0) + 1);
    try {
      await serveConnection(conn, context);
    } finally {
      open.delete(conn);
      counters.openConnections--;
      const left = perSource.get(conn.source)! - 1;
      if (left === 0) perSource.delete(conn.source);
      else perSource.set(conn.source, left);
      if (open.size === 0) allClosed?.();
    }
  };

  const accepting = (async () => {
    while (!shuttingDown) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (shuttingDown || error instanceof Deno.errors.BadResource) break;
        // Out of file descriptors or the like: wait, then accept again.
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_BACKOFF_MS));
        continue;
      }
      counters.acceptedConnections++;
      const remoteAddr = conn.remoteAddr as Deno.NetAddr;
      const source = remoteAddr.hostname;
      if (open.size >= limits.maxConnections) {
        refuseConnection(conn, "global_cap", source);
        continue;
      }
      if ((perSource.get(source) ?? 0) >= limits.maxConnectionsPerSource && !trusted(source)) {
        refuseConnection(conn, "source_cap", source);
        continue;
      }
      run(new BufferedConn(conn, remoteAddr));
    }
  })();

  let stopping: Promise<ShutdownResult> | null = null;
  let markFinished: () => void = () => {};
  const finished = new Promise<void>((resolve) => markFinished = resolve);

  const shutdown = (shutdownOptions: { deadlineMs?: number } = {}) => {
    stopping ??= (async () => {
      const started = performance.now();
      const deadlineMs = shutdownOptions.deadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
      shuttingDown = true;
      try {
        listener.close();
      } catch {
        // closed already
      }
      await accepting;
      // No request has begun on these: close them now.
      for (const conn of open) {
        if (conn.phase === Phase.Idle || conn.phase === Phase.Head) conn.expire("shutdown");
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (open.size > 0) {
        await Promise.race([
          new Promise<void>((resolve) => allClosed = resolve),
          new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs)),
        ]);
      }
      clearTimeout(timer);
      const closedAtDeadline = open.size;
      // A body cut off here counts as "incomplete" in its connection's loop.
      for (const conn of open) conn.expire("shutdown");
      clearInterval(sweeper);
      counters.flush();
      markFinished();
      return { closedAtDeadline, elapsedMs: Math.round(performance.now() - started) };
    })();
    return stopping;
  };

  return {
    addr,
    limits,
    stats: () => counters.snapshot(perSource.size),
    shutdown,
    finished,
  };
}
