/**
 * Running programs for the end-to-end test: one-shot commands with a time
 * limit, and long-running children whose output is kept (in memory and in a
 * log file) and which are always stopped on the way out.
 *
 * @module
 */

/** What a one-shot command did. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
  timedOut: boolean;
}

/** Options of a one-shot command. */
export interface CommandOptions {
  stdin?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
  /** Stderr goes to the terminal instead of being captured (long builds). */
  inheritStderr?: boolean;
  /** SIGTERM to the command when this aborts. */
  signal?: AbortSignal;
}

/** Runs a command to its end (or its time limit, then SIGKILL). */
export async function runCommand(
  program: string,
  args: string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const started = performance.now();
  const child = new Deno.Command(program, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: options.inheritStderr ? "inherit" : "piped",
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).spawn();
  let timedOut = false;
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, options.timeoutMs);
  const abort = () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  };
  options.signal?.addEventListener("abort", abort, { once: true });
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
    await writer.close().catch(() => {});
  }
  const output = await child.output();
  clearTimeout(timer);
  options.signal?.removeEventListener("abort", abort);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: options.inheritStderr ? "" : decoder.decode(output.stderr),
    ms: performance.now() - started,
    timedOut,
  };
}

/** Runs a command and throws, with its stderr, unless it exits 0. */
export async function mustRun(program: string, args: string[], options: CommandOptions = {}): Promise<string> {
  const result = await runCommand(program, args, options);
  if (result.code !== 0 || result.timedOut) {
    const why = result.timedOut ? `timed out after ${options.timeoutMs} ms` : `exit ${result.code}`;
    throw new Error(`${program} ${args.join(" ")}: ${why}: ${(result.stderr || result.stdout).trim().slice(-2000)}`);
  }
  return result.stdout;
}

/** A long-running child process. */
export class Background {
  readonly name: string;
  readonly child: Deno.ChildProcess;
  /** Output lines so far (stdout and stderr interleaved). */
  readonly lines: string[] = [];
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  #exited = false;
  #listeners = new Set<(line: string) => void>();

  constructor(name: string, child: Deno.ChildProcess, logFile: Deno.FsFile | null) {
    this.name = name;
    this.child = child;
    const pumps = [child.stdout, child.stderr].map((stream) => this.#pump(stream, logFile));
    this.status = child.status.then(async (status) => {
      this.#exited = true;
      await Promise.all(pumps);
      logFile?.close();
      return status;
    });
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Calls listener for every line from now on. */
  onLine(listener: (line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Stops the process: SIGTERM, then SIGKILL after graceMs. Resolves when
   * it has exited.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#exited) return;
    try {
      this.child.kill("SIGTERM");
    } catch {
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          this.child.kill("SIGKILL");
        } catch {
          // Gone meanwhile.
        }
        resolve();
      }, graceMs);
    });
    await Promise.race([this.status, killed]);
    await this.status;
    clearTimeout(timer);
  }

  async #pump(stream: ReadableStream<Uint8Array>, logFile: Deno.FsFile | null) {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      if (logFile) await logFile.write(chunk).catch(() => {});
      pending += decoder.decode(chunk, { stream: true });
      const parts = pending.split("\n");
      pending = parts.pop()!;
      for (const line of parts) this.#line(line);
    }
    if (pending) this.#line(pending);
  }

  #line(line: string) {
    this.lines.push(line);
    for (const listener of this.#listeners) listener(line);
  }
}

/** Starts a long-running child with its output piped to logPath (and kept in memory). */
export async function startBackground(
  name: string,
  program: string,
  args: string[],
  options: { logPath: string; env?: Record<string, string>; cwd?: string },
): Promise<Background> {
  const logFile = await Deno.open(options.logPath, { create: true, append: true });
  const child = new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).spawn();
  return new Background(name, child, logFile);
}

/** Resolves after ms, or rejects when signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * Polls check every intervalMs until it returns a value other than null,
 * or timeoutMs passes (then null). Stops early when stopIf returns a
 * reason (then throws it).
 */
export async function waitFor<T>(
  check: () => Promise<T | null> | T | null,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal; stopIf?: () => string | null },
): Promise<T | null> {
  const deadline = performance.now() + options.timeoutMs;
  while (true) {
    const value = await check();
    if (value !== null) return value;
    const reason = options.stopIf?.();
    if (reason) throw new Error(reason);
    if (performance.now() >= deadline) return null;
    await sleep(options.intervalMs ?? 250, options.signal);
  }
}
