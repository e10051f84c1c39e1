/**
 * Draining shutdown: requests in flight are counted, and once draining has
 * begun new ones are answered 503 at once, so that the listeners can be
 * shut down without cutting off a request body still arriving.
 *
 * @module
 */

/** Counts requests in flight and turns new ones away once draining. */
export class RequestGate {
  #inflight = 0;
  #draining = false;
  #idle: (() => void) | null = null;

  /** Runs a handler, or answers 503 while shutting down. */
  async run(handler: () => Promise<Response>): Promise<Response> {
    if (this.#draining) {
      return new Response("mdserver is shutting down\n", { status: 503, headers: { "retry-after": "2" } });
    }
    this.#inflight++;
    try {
      return await handler();
    } finally {
      this.#inflight--;
      if (this.#inflight === 0) this.#idle?.();
    }
  }

  /** Stops taking requests and waits (at most timeoutMs) for those in flight. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    if (this.#inflight === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#idle = resolve),
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }
}
