/**
 * Helpers for tests that need root, Debian tools or network namespaces:
 * requirement checks (fail in CI, skip with a reason elsewhere), commands,
 * polling, and a pair of namespaces joined by a veth pair.
 *
 * @module
 */

/** Whether the tests run in CI, where a missing requirement is a failure. */
export const CI = Deno.env.get("CI") === "true";

/** The result of a command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (at most `timeoutMs`), capturing its output. */
export async function run(
  command: string,
  args: string[],
  options: { timeoutMs?: number; cwd?: string } = {},
): Promise<CommandResult> {
  const output = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs a command and throws with its output unless it succeeds. */
export async function mustRun(
  command: string,
  args: string[],
): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

/** Why a test cannot run here (not root, a tool missing), or null when it can. */
export async function missingRequirement(
  options: { root?: boolean; tools?: string[] },
): Promise<string | null> {
  if (options.root) {
    const id = await run("id", ["-u"]).catch(() => null);
    if (id?.stdout.trim() !== "0") return "needs root";
  }
  for (const tool of options.tools ?? []) {
    const found = tool.startsWith("/")
      ? await Deno.stat(tool).then(() => true, () => false)
      : (await run("sh", ["-c", `command -v ${tool}`]).catch(() => null))
        ?.code === 0;
    if (!found) return `needs ${tool}`;
  }
  return null;
}

/**
 * Registers a test that needs the real thing: it fails in CI when `reason`
 * says a requirement is missing, and is skipped elsewhere, with the reason in
 * its name.
 */
export function requirementTest(
  name: string,
  reason: string | null,
  fn: () => Promise<void>,
): void {
  const skip = reason !== null && !CI;
  Deno.test({
    name: skip ? `${name} [skipped: ${reason}]` : name,
    ignore: skip,
    async fn() {
      if (reason !== null) throw new Error(`cannot run "${name}": ${reason}`);
      await fn();
    },
  });
}

/** Calls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function poll<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  while (true) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/** A TCP port free on 127.0.0.1 just now (dnsmasq takes UDP and TCP on it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** One DNS answer from dig: the status and the answer records' data. */
export interface DigAnswer {
  status: string;
  answers: string[];
}

/** Asks a DNS server with dig, once, with a short timeout; from inside a namespace when `netns` is given. */
export async function dig(
  server: string,
  port: number,
  name: string,
  options: { type?: string; netns?: string } = {},
): Promise<DigAnswer> {
  const args = [`@${server}`, "-p", String(port), "+time=1", "+tries=1", "+noall", "+answer", "+comments"];
  if (options.type === "PTR") args.push("-x", name);
  else args.push(name, options.type ?? "A");
  const result = options.netns
    ? await run("ip", ["netns", "exec", options.netns, "dig", ...args], { timeoutMs: 5_000 })
    : await run("dig", args, { timeoutMs: 5_000 });
  const status = /status: ([A-Z]+)/.exec(result.stdout)?.[1] ??
    `no answer (dig exit ${result.code})`;
  const answers = result.stdout.split("\n")
    .filter((line) => line !== "" && !line.startsWith(";"))
    .map((line) => line.trim().split(/\s+/).at(-1)!);
  return { status, answers };
}

/** Two network namespaces joined by a veth pair, removed by cleanup(). */
export class NamespacePair {
  /** Namespace and interface of the server side. */
  readonly server: string;
  readonly serverIf: string;
  /** Namespace and interface of the client side. */
  readonly client: string;
  readonly clientIf: string;

  private constructor(tag: string) {
    this.server = `mdst-${tag}-srv`;
    this.client = `mdst-${tag}-cli`;
    // Interface names have at most 15 characters.
    this.serverIf = `mds${tag}s`;
    this.clientIf = `mds${tag}c`;
  }

  /** Creates the namespaces and the veth pair (both ends down, no addresses). */
  static async create(): Promise<NamespacePair> {
    const tag = crypto.randomUUID().slice(0, 6);
    const pair = new NamespacePair(tag);
    try {
      await mustRun("ip", ["netns", "add", pair.server]);
      await mustRun("ip", ["netns", "add", pair.client]);
      await mustRun("ip", [
        "link",
        "add",
        pair.serverIf,
        "type",
        "veth",
        "peer",
        "name",
        pair.clientIf,
      ]);
      await mustRun("ip", ["link", "set", pair.serverIf, "netns", pair.server]);
      await mustRun("ip", ["link", "set", pair.clientIf, "netns", pair.client]);
      for (const ns of [pair.server, pair.client]) {
        await mustRun("ip", ["-n", ns, "link", "set", "lo", "up"]);
      }
    } catch (error) {
      await pair.cleanup();
      throw error;
    }
    return pair;
  }

  /** The argument list that runs a command inside a namespace. */
  exec(ns: string, command: string, args: string[]): [string, string[]] {
    return ["ip", ["netns", "exec", ns, command, ...args]];
  }

  /** Runs a command inside a namespace. */
  async run(
    ns: string,
    command: string,
    args: string[],
    options: { timeoutMs?: number } = {},
  ) {
    const [cmd, full] = this.exec(ns, command, args);
    return await run(cmd, full, options);
  }

  /**
   * Kills what still runs in the namespaces (only processes this test
   * started there) and deletes them, which removes the veth pair too.
   */
  async cleanup(): Promise<void> {
    for (const ns of [this.server, this.client]) {
      const pids = await run("ip", ["netns", "pids", ns]).catch(() => null);
      for (
        const pid of pids?.stdout.split(/\s+/).filter((text) => /^\d+$/.test(text)) ?? []
      ) {
        try {
          Deno.kill(Number(pid), "SIGKILL");
        } catch {
          // gone already
        }
      }
      await run("ip", ["netns", "del", ns]).catch(() => null);
    }
    await run("ip", ["link", "del", this.serverIf]).catch(() => null);
  }
}
