/**
 * One accepted TCP connection with its read buffer (reused for every request
 * on it, grown only as far as the head cap) and the deadline of what it is
 * waiting for. The server's sweeper closes it once the deadline has passed;
 * the pending read or write then fails and the connection's loop ends.
 *
 * @module
 */

import type { RefusalReason } from "./stats.ts";

/** What a connection is doing, for the deadline and for shutdown. */
export const enum Phase {
  /** Waiting for the first byte of a next request (kept alive). */
  Idle,
  /** Reading a request head. */
  Head,
  /** Reading a request body. */
  Body,
  /** The handler runs (no deadline but the shutdown's). */
  Handler,
  /** Writing a response. */
  Write,
}

/** Why a connection was closed from outside its loop. */
export type Expiry = RefusalReason | "idle" | "shutdown";

/** Bytes the read buffer starts with: a cloud-init request head is a few hundred bytes. */
const INITIAL_BUFFER_BYTES = 2048;

const EMPTY = new Uint8Array(0);

/** Buffers of closed connections kept for new ones (a connection per request is cloud-init's way). */
const spareBuffers: Uint8Array[] = [];

/** Most spare buffers kept. */
const MAX_SPARE_BUFFERS = 256;

/** An accepted connection, its buffer and its deadline. */
export class BufferedConn {
  /** Unread bytes are `buffer[start, end)`. */
  buffer: Uint8Array = spareBuffers.pop() ?? new Uint8Array(INITIAL_BUFFER_BYTES);
  start = 0;
  end = 0;
  phase: Phase = Phase.Head;
  /** Date.now() after which the sweeper closes the connection. */
  deadline = Infinity;
  /** Set when the sweeper or shutdown closed the connection. */
  expired: Expiry | null = null;
  requests = 0;
  readonly conn: Deno.TcpConn;
  /** The peer's address (read once: each read of `conn.remoteAddr` makes a new object). */
  readonly remoteAddr: Deno.NetAddr;
  /** The peer's IP address, the key of the per-source cap. */
  readonly source: string;
  #closed = false;
  #noDelay = false;

  constructor(conn: Deno.TcpConn, remoteAddr: Deno.NetAddr) {
    this.conn = conn;
    this.remoteAddr = remoteAddr;
    this.source = remoteAddr.hostname;
  }

  /**
   * Turns Nagle's algorithm off before a response of several writes (a
   * stream); a response in one write needs no such call.
   */
  noDelay(): void {
    if (this.#noDelay) return;
    this.#noDelay = true;
    try {
      this.conn.setNoDelay(true);
    } catch {
      // the peer has gone; the write will say so
    }
  }

  /** Unread bytes in the buffer. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Enters a phase with a deadline `timeoutMs` from now (Infinity: none). */
  enter(phase: Phase, timeoutMs: number): void {
    this.phase = phase;
    this.deadline = timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs;
  }

  /**
   * Reads once more into the buffer, making room first (moving unread bytes
   * to the front, or growing the buffer up to `cap` bytes). Returns the bytes
   * read, 0 when the buffer already holds `cap` unread bytes, null at EOF.
   */
  async readMore(cap: number): Promise<number | null> {
    if (this.end === this.buffer.length) {
      if (this.start > 0) {
        this.buffer.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else if (this.buffer.length < cap) {
        const grown = new Uint8Array(Math.min(cap, this.buffer.length * 2));
        grown.set(this.buffer.subarray(0, this.end));
        this.buffer = grown;
      } else {
        return 0;
      }
    } else if (this.start === this.end) {
      this.start = this.end = 0;
    }
    const count = await this.conn.read(this.end === 0 ? this.buffer : this.buffer.subarray(this.end));
    if (count === null) return null;
    this.end += count;
    return count;
  }

  /** Writes all of `bytes`, each write under the given timeout. */
  writeAll(bytes: Uint8Array, timeoutMs: number): Promise<void> {
    this.enter(Phase.Write, timeoutMs);
    // Most answers go out in one write: no further async step for them.
    return this.conn.write(bytes).then((written) =>
      written < bytes.length ? this.#writeRest(bytes, written) : undefined
    );
  }

  async #writeRest(bytes: Uint8Array, written: number): Promise<void> {
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  /** Closes the connection from outside its loop, remembering why. */
  expire(why: Expiry): void {
    this.expired ??= why;
    this.close();
  }

  /** Closes the socket (once). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the peer's reset
    }
  }

  /** Hands the buffer back for another connection; called once no read is pending. */
  release(): void {
    if (this.buffer.length === INITIAL_BUFFER_BYTES && spareBuffers.length < MAX_SPARE_BUFFERS) {
      spareBuffers.push(this.buffer);
    }
    this.buffer = EMPTY;
    this.start = this.end = 0;
  }

  /** Whether the socket was closed here. */
  get closed(): boolean {
    return this.#closed;
  }
}
