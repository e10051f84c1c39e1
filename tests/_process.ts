/**
 * mdserver as a separate process, for tests that kill it, run two of it on
 * one store, read its memory, or run it in a network namespace:
 * `deno run -P=test main.ts serve --config <file>`.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { adminSocketFetch } from "./_harness.ts";
import { freePort } from "./_netns.ts";

/** The project root, where main.ts and deno.json are. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** What a process test configures. */
export interface ProcessConfigOptions {
  /** Pool network; the gateway is its first address. */
  network: { address: string; prefix: number; gateway: string };
  /** KV file; default `<dir>/mdserver.kv`. */
  kvFile?: string;
  /** dnsmasq base_dir; default `<dir>/dnsmasq`. */
  dnsmasqDir?: string;
  /** Metadata listener; default 127.0.0.1 and a free port. */
  listenAddress?: string;
  port?: number;
  /** Extra `[mdserver]` keys, one `key = value` a line. */
  mdserver?: string;
  /** `[dnsmasq] interface`; default lo. */
  interface?: string;
}

/** A written configuration and the ports it names. */
export interface ProcessConfig {
  file: string;
  metadataUrl: string;
  /** The admin API's unix socket (TCP is off, as in production). */
  adminSocket: string;
  kvFile: string;
  dnsmasqDir: string;
}

/** Writes `<dir>/<name>.conf` for a server process (`manage = no`: dnsmasq's files, no dnsmasq). */
export async function writeProcessConfig(
  dir: string,
  name: string,
  options: ProcessConfigOptions,
): Promise<ProcessConfig> {
  const listen = options.listenAddress ?? "127.0.0.1";
  const port = options.port ?? freePort();
  const kvFile = options.kvFile ?? join(dir, "mdserver.kv");
  const dnsmasqDir = options.dnsmasqDir ?? join(dir, "dnsmasq");
  await Deno.mkdir(join(dir, "userdata"), { recursive: true });
  const text = `[mdserver]
listen_address = ${listen}
port = ${port}
userdata_dir = ${join(dir, "userdata")}
kv_file = ${kvFile}
${options.mdserver ?? ""}

[admin]
socket = ${join(dir, `run-${name}`, "admin.sock")}

[public-keys]
default = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProcessTestKey test@process

[dnsmasq]
net_address = ${options.network.address}
net_prefix = ${options.network.prefix}
gateway = ${options.network.gateway}
interface = ${options.interface ?? "lo"}
base_dir = ${dnsmasqDir}
run_dir = ${join(dir, `run-${name}`)}
domain = test.internal
manage = no

[configdrive]
dir = ${join(dir, `seeds-${name}`)}

[service]
location = testzone
`;
  const file = join(dir, `${name}.conf`);
  await Deno.writeTextFile(file, text);
  return {
    file,
    metadataUrl: `http://${listen}:${port}`,
    adminSocket: join(dir, `run-${name}`, "admin.sock"),
    kvFile,
    dnsmasqDir,
  };
}

/** A running mdserver process. */
export interface ServerProcess {
  readonly pid: number;
  /** Everything it wrote to stderr so far. */
  log(): string;
  kill(signal: Deno.Signal): void;
  /** Resolves when it has exited (its output read to the end). */
  readonly exited: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL if it is still there after a while; waits for the exit. */
  stop(): Promise<Deno.CommandStatus>;
}

/** Starts `deno run -P=test main.ts serve --config <file>`, inside a network namespace if given. */
export function spawnServer(configFile: string, options: { netns?: string } = {}): ServerProcess {
  const deno = [Deno.execPath(), "run", "-P=test", "main.ts", "serve", "--config", configFile];
  // `ip netns exec` execs the command, so the pid is deno's own.
  const [command, ...args] = options.netns ? ["ip", "netns", "exec", options.netns, ...deno] : deno;
  const child = new Deno.Command(command!, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const chunks: string[] = [];
  const reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void chunks.push(chunk) }),
  ).catch(() => {});
  const exited = child.status.then(async (status) => {
    await reading;
    return status;
  });
  let done = false;
  exited.then(() => done = true);
  const kill = (signal: Deno.Signal) => {
    if (done) return;
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  return {
    pid: child.pid,
    log: () => chunks.join(""),
    kill,
    exited,
    async stop() {
      kill("SIGTERM");
      const timer = setTimeout(() => kill("SIGKILL"), 20_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Calls `check` every 100 ms until it answers true; throws with the server's log if it exits first or time runs out. */
export async function waitUntil(
  server: ServerProcess,
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  let exited = false;
  server.exited.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (exited) throw new Error(`mdserver exited before ${what}:\n${server.log()}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${server.log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until GET /health on the admin socket answers 200 (the service is up). */
export async function waitForHealth(server: ServerProcess, adminSocket: string): Promise<void> {
  await waitUntil(server, `unix:${adminSocket} /health`, async () => {
    const response = await adminSocketFetch(adminSocket, "/health");
    return response.ok;
  });
}

/** Resident and peak memory of a process, in KiB, from /proc/<pid>/status (read with cat: Deno grants /proc only to -A). */
export async function memoryKiB(pid: number): Promise<{ rss: number; peak: number }> {
  const output = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stdout: "piped" }).output();
  const text = new TextDecoder().decode(output.stdout);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { rss: field("VmRSS"), peak: field("VmHWM") };
}
