/**
 * A server under test as its own process: started, watched through
 * /proc/<pid>/stat (CPU time) and /proc/<pid>/status (memory), stopped.
 * Its log lines are counted, so a run can check one line per request.
 *
 * @module
 */

import { join } from "node:path";

/** Where the project lives (deno.json, main.ts). */
export const PROJECT_DIR: string = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

/** Memory of a process, from /proc/<pid>/status. */
export interface ProcessMemory {
  /** Resident set size now (VmRSS), MiB. */
  rssMiB: number;
  /** Peak resident set size (VmHWM), MiB. */
  hwmMiB: number;
}

/** A running server process. */
export interface ServerProcess {
  pid: number;
  /** Base URL, without a trailing slash. */
  url: string;
  /** User plus system CPU time the process has used so far, in seconds. */
  cpuSeconds(): Promise<number>;
  memory(): Promise<ProcessMemory>;
  /** Lines it has written to stderr so far. */
  logLines(): number;
  /** Lines of stderr that are warnings or errors (kept for the report). */
  problems(): string[];
  /**
   * The first of its first 1,000 lines of output that matches, once it is written (start-up lines such as
   * "dnsmasq: records of …"); rejects after `timeoutMs` or when the process exits.
   */
  startupLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** Stops it (SIGTERM, then SIGKILL after 20 s). */
  stop(): Promise<void>;
}

/**
 * A file under /proc. Deno grants /proc files only to --allow-all, which no
 * permission set here uses, so `cat` reads them.
 */
export async function readProcFile(path: string): Promise<string> {
  const output = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "piped" }).output();
  if (!output.success) throw new Error(`cannot read ${path}: ${new TextDecoder().decode(output.stderr).trim()}`);
  return new TextDecoder().decode(output.stdout);
}

function readProc(pid: number, name: string): Promise<string> {
  return readProcFile(`/proc/${pid}/${name}`);
}

/** CPU seconds (utime + stime) of a process. */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(pid, "stat");
  // The command name (field 2) may hold spaces: count fields after its ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the file are the 12th and 13th after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** VmRSS and VmHWM of a process. */
export async function processMemory(pid: number): Promise<ProcessMemory> {
  const status = await readProc(pid, "status");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMiB: round1(kib("VmRSS") / 1024), hwmMiB: round1(kib("VmHWM") / 1024) };
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * Starts `deno run -P=bench main.ts serve --config FILE` and waits for its
 * metadata listener. `denoFlags` go to `deno run` (e.g. `--cpu-prof` when profiling).
 */
export async function startMdserver(configFile: string, denoFlags: string[] = []): Promise<ServerProcess> {
  return await startServerProcess({
    command: "deno",
    args: [
      "run",
      "-q",
      "-P=bench",
      ...denoFlags,
      "--config",
      join(PROJECT_DIR, "deno.json"),
      join(PROJECT_DIR, "main.ts"),
      "serve",
      "--config",
      configFile,
    ],
    ready: /metadata listening on (http:\/\/[^ ]+?)\/?$/,
  });
}

/** Starts the ceiling server (bench/ceiling_server.ts) and waits for it to listen. */
export async function startCeiling(): Promise<ServerProcess> {
  return await startServerProcess({
    command: "deno",
    args: [
      "run",
      "-q",
      "-P=bench",
      "--config",
      join(PROJECT_DIR, "deno.json"),
      join(PROJECT_DIR, "bench/ceiling_server.ts"),
    ],
    ready: /listening on (http:\/\/[^ ]+?)\/?$/,
  });
}

/** How to start a server under test and how to tell it listens. */
export interface ServerCommand {
  command: string;
  args: string[];
  /** Working directory; default the project. */
  cwd?: string;
  /** Variables added to the environment. */
  env?: Record<string, string>;
  /** A line of its output that says it listens; group 1 is its base URL. */
  ready: RegExp;
}

/** Starts a server process, counts its output lines and waits for its `ready` line (at most 120 s). */
export async function startServerProcess(spec: ServerCommand): Promise<ServerProcess> {
  const { command, args, ready } = spec;
  const child = new Deno.Command(command, {
    args,
    cwd: spec.cwd ?? PROJECT_DIR,
    env: spec.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let lines = 0;
  const problems: string[] = [];
  // The first lines, and who waits for one of them.
  const STARTUP_LINES = 1000;
  const startup: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  let resolveUrl: (url: string) => void;
  let rejectUrl: (error: Error) => void;
  const url = new Promise<string>((resolve, reject) => {
    resolveUrl = resolve;
    rejectUrl = reject;
  });
  const recent: string[] = [];
  const watch = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        lines++;
        if (recent.length < 20) recent.push(line);
        if (startup.length < STARTUP_LINES) {
          startup.push(line);
          for (const waiter of waiters) if (waiter.pattern.test(line)) waiter.resolve(line);
        }
        const match = ready.exec(line);
        if (match) resolveUrl(match[1]!);
        if (/\b(WARNING|ERROR)\b|^<[34]>/.test(line) && problems.length < 20) problems.push(line);
      }
    }
  };
  const watching = Promise.all([watch(child.stdout), watch(child.stderr)]);
  const exited = child.status.then((status) => {
    rejectUrl(
      new Error(`${command} ${args.join(" ")} exited (${status.code}) before listening:\n${recent.join("\n")}`),
    );
    return status;
  });
  const timer = setTimeout(
    () => rejectUrl(new Error(`${command} ${args.join(" ")} did not listen within 120 s`)),
    120_000,
  );
  let base: string;
  try {
    base = await url;
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    pid: child.pid,
    url: base,
    cpuSeconds: () => processCpuSeconds(child.pid),
    memory: () => processMemory(child.pid),
    logLines: () => lines,
    problems: () => problems,
    startupLine(pattern, timeoutMs) {
      const found = startup.find((line) => pattern.test(line));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise<string>((resolve, reject) => {
        const waiter = {
          pattern,
          resolve: (line: string) => {
            done();
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${command}: no line matching ${pattern} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(waiter);
        };
        waiters.add(waiter);
        exited.then(() => {
          if (!waiters.has(waiter)) return;
          done();
          reject(new Error(`${command} exited before a line matching ${pattern}`));
        });
      });
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(kill);
      await watching;
    },
  };
}
