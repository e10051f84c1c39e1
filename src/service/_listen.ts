/**
 * Binding a TCP listener whose address may not exist yet (the libvirt
 * bridge coming up after mdserver): the bind is tried again until it
 * works or the start is aborted, with one log line naming the address.
 *
 * @module
 */

import type { Logger } from "../log/log.ts";

/** How listenWhenAvailable waits. */
export interface WaitOptions {
  /** Where the one waiting line goes. */
  log: Logger;
  /** Stops waiting (shutdown during the wait); the bind then throws the abort reason. */
  signal?: AbortSignal;
  /** Time between attempts; default 500 ms. */
  intervalMs?: number;
}

/**
 * Calls `bind` until it does not fail with "address not available", logging
 * once that it waits for `address`. Other errors (port in use…) are thrown.
 */
export async function listenWhenAvailable<T>(
  address: string,
  what: string,
  bind: () => T,
  options: WaitOptions,
): Promise<T> {
  const intervalMs = options.intervalMs ?? 500;
  let logged = false;
  while (true) {
    options.signal?.throwIfAborted();
    try {
      const server = bind();
      if (logged) options.log.info(`${what}: ${address} is there now`);
      return server;
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrNotAvailable)) throw error;
      if (!logged) {
        options.log.warning(
          `${what}: waiting for ${address} to appear on an interface (is the libvirt network up?): ${
            (error as Error).message
          }`,
        );
        logged = true;
      }
    }
    await wait(intervalMs, options.signal);
  }
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Binds a listener; an address in use (and, unless `waitsForAddress`, one
 * not on this host) is named with its configuration key.
 */
export function listen<Server>(
  what: string,
  section: string,
  host: string,
  port: number,
  bind: () => Server,
  waitsForAddress = false,
): Server {
  try {
    return bind();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `${what} cannot listen on ${host}:${port}: the address is in use (another mdserver? see: ss -ltnp 'sport = :${port}'); ` +
          `stop it or change [${section}] port`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable && !waitsForAddress) {
      throw new Error(
        `${what} cannot listen on ${host}:${port}: no interface of this host has ${host}; ` +
          `add it (the mds network up?) or change [${section}] listen_address`,
      );
    }
    throw error;
  }
}
