/**
 * The dnsmasq process: run as a supervised child when mdserver manages it
 * (`[dnsmasq] manage = child`), or signalled through its pid file when someone
 * else runs it (`manage = no`).
 *
 * The child runs in the foreground with its log on stderr, which becomes
 * mdserver's log. If it exits, it is started again after a delay that doubles
 * from `initialDelayMs` up to `maxDelayMs`, and drops back to the start once a
 * run lasted `stableMs`. Stopping sends SIGTERM, then SIGKILL after
 * `stopTimeoutMs`.
 *
 * @module
 */

import { sleep } from "../io/sleep.ts";
import type { Logger } from "../log/log.ts";

/** Restart delays of the supervisor, in milliseconds. */
export interface Backoff {
  /** Delay before the first restart. */
  initialDelayMs: number;
  /** Longest delay between restarts. */
  maxDelayMs: number;
  /** A run at least this long resets the delay to `initialDelayMs`. */
  stableMs: number;
}

/** The default restart delays: 0.25 s doubling to 10 s, reset after 30 s up. */
export const DEFAULT_BACKOFF: Backoff = {
  initialDelayMs: 250,
  maxDelayMs: 10_000,
  stableMs: 30_000,
};

/** What the supervisor runs and how. */
export interface DnsmasqProcessOptions {
  /** The program, e.g. "dnsmasq" or "/usr/sbin/dnsmasq". */
  binary: string;
  /** The generated configuration file. */
  confFile: string;
  /** Where dnsmasq's output and the supervisor's lines go. */
  log: Logger;
  /** Restart delays; default DEFAULT_BACKOFF. */
  backoff?: Partial<Backoff>;
  /** How long SIGTERM may take before SIGKILL. Default 5 s. */
  stopTimeoutMs?: number;
}

/** The next restart delay: doubled, at most `maxDelayMs`. */
export function nextDelay(delayMs: number, backoff: Backoff): number {
  return Math.min(delayMs * 2, backoff.maxDelayMs);
}

/** A dnsmasq child kept running until stopped. */
export class DnsmasqSupervisor {
  readonly #binary: string;
  readonly #args: string[];
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #stopTimeoutMs: number;
  #child: Deno.ChildProcess | null = null;
  #restarts = 0;
  #stopping = false;
  #restartRequested = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #sleepTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #readers = new Set<Promise<void>>();

  /** A supervisor for the dnsmasq of `options.confFile`; start() runs it. */
  constructor(options: DnsmasqProcessOptions) {
    this.#binary = options.binary;
    // Foreground so that it stays our child; log to stderr, which we read.
    this.#args = [
      "--keep-in-foreground",
      "--log-facility=-",
      `--conf-file=${options.confFile}`,
    ];
    this.#log = options.log;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  }

  /** Pid of the running dnsmasq, or null between runs. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** How many times dnsmasq was started again after the first start. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Starts dnsmasq and keeps it running until stop(). */
  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
  }

  /** Sends SIGHUP, which makes dnsmasq re-read its host records; false when it is not running. */
  reload(reason: string): boolean {
    const child = this.#child;
    if (!child) {
      this.#log.info(
        `dnsmasq not running; its next start reads the new records (${reason})`,
      );
      return false;
    }
    try {
      child.kill("SIGHUP");
    } catch {
      return false; // exited just now; the restart reads the new records
    }
    this.#log.info(`dnsmasq[${child.pid}] reloaded with SIGHUP: ${reason}`);
    return true;
  }

  /** Stops dnsmasq and starts it again at once, dropping the leases it holds in memory. */
  async restart(reason: string): Promise<void> {
    const child = this.#child;
    if (!child || this.#stopping) return;
    this.#restartRequested = true;
    this.#log.info(`dnsmasq[${child.pid}] restarting: ${reason}`);
    await this.#terminate(child);
    // Wait until the loop has spawned the next one, so callers may rely on it.
    for (let i = 0; i < 100 && this.#child === null && !this.#stopping; i++) {
      await sleep(10);
    }
  }

  /** Stops dnsmasq (SIGTERM, then SIGKILL after the timeout) and the supervision. */
  async stop(): Promise<void> {
    if (!this.#loop) return;
    this.#stopping = true;
    clearTimeout(this.#sleepTimer);
    this.#wake?.();
    const child = this.#child;
    if (child) await this.#terminate(child);
    await this.#loop;
    await Promise.all(this.#readers);
    this.#log.info(
      child ? `dnsmasq[${child.pid}] stopped` : "dnsmasq supervision stopped",
    );
  }

  async #terminate(child: Deno.ChildProcess): Promise<void> {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      child.status.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), this.#stopTimeoutMs)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#log.warning(
        `dnsmasq[${child.pid}] did not stop within ${this.#stopTimeoutMs} ms; sending SIGKILL`,
      );
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
    }
  }

  async #run(): Promise<void> {
    let delay = this.#backoff.initialDelayMs;
    let first = true;
    while (!this.#stopping) {
      if (!first) this.#restarts++;
      first = false;
      const startedAt = Date.now();
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(this.#binary, {
          args: this.#args,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      } catch (error) {
        this.#log.error(
          `cannot start dnsmasq "${this.#binary}": ${(error as Error).message}`,
        );
        await this.#sleep(delay);
        delay = nextDelay(delay, this.#backoff);
        continue;
      }
      this.#child = child;
      this.#log.info(
        `dnsmasq[${child.pid}] started: ${this.#binary} ${this.#args.join(" ")}`,
      );
      this.#follow(child.pid, child.stdout);
      this.#follow(child.pid, child.stderr);
      const status = await child.status;
      this.#child = null;
      if (this.#stopping) break;
      const ranMs = Date.now() - startedAt;
      if (this.#restartRequested) {
        this.#restartRequested = false;
        delay = this.#backoff.initialDelayMs;
        continue;
      }
      if (ranMs >= this.#backoff.stableMs) delay = this.#backoff.initialDelayMs;
      const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
      this.#log.warning(
        `dnsmasq[${child.pid}] ${how} after ${(ranMs / 1000).toFixed(1)} s; restarting in ${
          (delay / 1000).toFixed(2)
        } s`,
      );
      await this.#sleep(delay);
      delay = nextDelay(delay, this.#backoff);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    });
  }

  /** Copies dnsmasq's output into the log, one line per line; file re-reads at debug level. */
  #follow(pid: number, stream: ReadableStream<Uint8Array>) {
    const reader = (async () => {
      for await (const line of lines(stream)) {
        if (line === "") continue;
        const text = line.startsWith("dnsmasq") ? line : `dnsmasq[${pid}]: ${line}`;
        if (/inotify|: read \//.test(line)) this.#log.debug(text);
        else this.#log.info(text);
      }
    })().catch(() => {});
    this.#readers.add(reader);
    reader.finally(() => this.#readers.delete(reader));
  }
}

async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer !== "") yield buffer;
}

/**
 * Sends a signal to the dnsmasq whose pid is in `pidFile`, only if that
 * process is a dnsmasq (so a stale file never signals a process that reused
 * the pid). Uses `pkill --pidfile … --exact dnsmasq`. Returns whether a
 * process was signalled; a missing or stale pid file is false, not an error.
 */
export async function signalPidFile(
  pidFile: string,
  signal: "SIGHUP" | "SIGTERM" | 0,
): Promise<boolean> {
  try {
    await Deno.stat(pidFile);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  const name = signal === 0 ? "0" : signal.slice(3);
  const output = await new Deno.Command("pkill", {
    args: ["--signal", name, "--pidfile", pidFile, "--exact", "dnsmasq"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (output.code === 0) return true;
  if (output.code === 1) return false;
  throw new Error(
    `pkill --pidfile "${pidFile}" failed (code ${output.code}): ${new TextDecoder().decode(output.stderr).trim()}`,
  );
}
