/**
 * The limits of the guest HTTP server and their defaults. Every number is an
 * option; the defaults suit a lab host with a few hundred guests on one
 * bridge, where cloud-init opens one short connection at a time and sends
 * heads of a few hundred bytes and bodies of a few KiB (phone-home).
 *
 * @module
 */

/** The limits of one server; every field has a default (see {@linkcode DEFAULT_LIMITS}). */
export interface ServerLimits {
  /** Largest request line plus headers plus the blank line, bytes (414 or 431 beyond). */
  maxHeadBytes: number;
  /** Most header fields in one request (431 beyond). */
  maxHeaders: number;
  /** Time from the first byte of a request (or the accept) to its last header, ms; then the connection is closed. */
  headTimeoutMs: number;
  /** Largest request body, bytes; a larger Content-Length is answered 413 before any of it is read. */
  maxBodyBytes: number;
  /** Time from the end of the head to the last byte of the body, ms; then the connection is closed. */
  bodyTimeoutMs: number;
  /** Time a kept-alive connection may wait for its next request, ms. */
  idleTimeoutMs: number;
  /** Time one write of a response may take (a guest that does not read), ms. */
  writeTimeoutMs: number;
  /** Open connections from one source address; more are answered 503 and closed at once. */
  maxConnectionsPerSource: number;
  /** Open connections in all; more are answered 503 and closed at once. */
  maxConnections: number;
  /** Requests on one connection before the server closes it (0: no limit). */
  maxRequestsPerConnection: number;
}

/** The defaults, for a lab host with a few hundred guests. */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxHeadBytes: 8 * 1024,
  maxHeaders: 64,
  headTimeoutMs: 5_000,
  maxBodyBytes: 64 * 1024,
  bodyTimeoutMs: 10_000,
  idleTimeoutMs: 15_000,
  writeTimeoutMs: 10_000,
  maxConnectionsPerSource: 32,
  maxConnections: 1_000,
  maxRequestsPerConnection: 0,
});

/** The default bound of `shutdown()`: in-flight requests get this long, ms. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 5_000;

/** Fills in defaults and checks each limit is a positive whole number (0 allowed where it means "no limit"). */
export function resolveLimits(given: Partial<ServerLimits> = {}): ServerLimits {
  const limits = { ...DEFAULT_LIMITS, ...given } as ServerLimits;
  for (const [name, value] of Object.entries(limits)) {
    const zeroAllowed = name === "maxRequestsPerConnection";
    if (!Number.isSafeInteger(value) || value < (zeroAllowed ? 0 : 1)) {
      throw new RangeError(
        `Cannot use HTTP server limit "${name}": ${value} is not a ${
          zeroAllowed ? "non-negative" : "positive"
        } whole number`,
      );
    }
  }
  if (limits.maxHeadBytes < 64) {
    throw new RangeError(`Cannot use HTTP server limit "maxHeadBytes": ${limits.maxHeadBytes} is below 64`);
  }
  return limits;
}
