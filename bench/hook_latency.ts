/**
 * Wall time of one libvirt hook call, as libvirt sees it: process start to
 * exit, domain XML on stdin, uploading to a running mdserver on loopback.
 *
 *   deno task bench:hook [--calls 50] [--max-seconds 300]
 *
 * Compares, in the same run against the same service, interleaved call by call:
 * - `deno run hook.ts` as installed: the wrapper `install-hook` writes
 *   (bash, then `deno run --no-config` with the `hook` set as flags), the
 *   bench's folder allowed on top of the set;
 * - the floor: that wrapper running an empty module instead of hook.ts
 *   (bash and deno's own start-up, no work; it uploads nothing);
 * - the compiled hook (`deno compile`), when it can be built here;
 * - a bash + curl hook doing the same upload (md_server's approach, with the
 *   endpoint hard-coded instead of read from the configuration).
 *
 * Each runs in the environment libvirt gives a hook (PATH, HOME, LC_ALL=C
 * and MDSERVER_CONFIG, nothing inherited). Every upload registers a new
 * domain, so each one does the full work of a first start. At most
 * `--calls` rounds (1–1000), and no new round after `--max-seconds`.
 * Prints a table with the ratios to bash + curl, then the results as JSON.
 *
 * @module
 */

import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { hookPermissionFlags, hookWrapper } from "../src/hook/install.ts";
import { shellQuote } from "../src/io/mod.ts";
import { silentLogger } from "../src/log/log.ts";
import { startService } from "../src/service/service.ts";
import { domainXml } from "./upload_scaling.ts";

const PROJECT_DIR = decodeURIComponent(new URL("..", import.meta.url).pathname)
  .replace(/\/$/, "");

/** One way of running the hook. */
interface Variant {
  name: string;
  /** Why it was not run, or null. */
  skipped: string | null;
  command: string;
  args: string[];
  /** Whether a call registers its domain (the floor does not). */
  uploads: boolean;
}

/** Names of the variants, as in the results. */
export const HOOK_VARIANTS = {
  installed: "deno run hook.ts (installed wrapper)",
  floor: "floor: wrapper running an empty module",
  compiled: "compiled hook",
  curl: "bash + curl",
} as const;

/** A call still running after this is killed and counted as a failure (the hook's own budget is 2 s). */
const CALL_GUARD_MS = 10_000;

/** The measurements of one variant. */
export interface VariantResult {
  name: string;
  skipped: string | null;
  calls: number;
  failures: number;
  p50Ms: number | null;
  p99Ms: number | null;
  minMs: number | null;
  maxMs: number | null;
  meanMs: number | null;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

async function runOnce(
  variant: Variant,
  xml: string,
  env: Record<string, string>,
) {
  const started = performance.now();
  const child = new Deno.Command(variant.command, {
    args: variant.args,
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), CALL_GUARD_MS);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(xml)).catch(() => {});
  await writer.close().catch(() => {});
  const output = await child.output();
  const elapsed = performance.now() - started;
  clearTimeout(guard);
  const stderr = new TextDecoder().decode(output.stderr).trim();
  return {
    elapsed,
    ok: output.success && stderr === "" && output.stdout.length === 0,
    stderr,
  };
}

/** Permission flags with one more entry for some kinds (`--allow-read=/etc/mdserver` + `/tmp/x`). */
function widen(flags: string[], more: Record<string, string>): string[] {
  const out = flags.map((flag) => {
    const match = /^--allow-(\w+)=(.*)$/.exec(flag);
    const extra = match ? more[match[1]!] : undefined;
    return extra === undefined ? flag : `${flag},${extra}`;
  });
  for (const [kind, entry] of Object.entries(more)) {
    if (!flags.some((flag) => flag.startsWith(`--allow-${kind}`))) out.push(`--allow-${kind}=${entry}`);
  }
  return out;
}

async function tryCompile(
  dir: string,
  configDir: string,
): Promise<{ path: string | null; reason: string | null }> {
  const path = join(dir, "mdserver-hook");
  // The same code as `deno task compile-hook`; the baked-in permissions
  // also cover this run's temporary configuration.
  const output = await new Deno.Command("deno", {
    args: [
      "compile",
      "-q",
      "--no-config",
      `--allow-read=${configDir}`,
      "--allow-net=127.0.0.1",
      "--allow-env=MDSERVER_CONFIG",
      "-o",
      path,
      join(PROJECT_DIR, "hook.ts"),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (output.success) return { path, reason: null };
  const text = new TextDecoder().decode(output.stderr);
  const offline = /dl\.deno\.land|denort|error sending request|dns error/i.test(
    text,
  );
  return {
    path: null,
    reason: offline
      ? "not built: deno compile cannot fetch its runtime (denort) offline"
      : `not built: ${text.trim().split("\n")[0]}`,
  };
}

/** What runHookLatency measured. */
export interface HookLatencyResult {
  benchmark: "hook_latency";
  date: string;
  deno: string;
  cpus: number;
  calls: number;
  warmup: number;
  /** Whether `--max-seconds` ended the run before `calls` rounds. */
  cutShort: boolean;
  registered: number;
  expected: number;
  results: VariantResult[];
  /** p50 and p99 of each variant over bash + curl's. */
  ratios: { name: string; p50: number | null; p99: number | null }[];
  /** The first failure of each variant that failed. */
  firstFailures: Record<string, string>;
}

/** Runs each hook variant `calls` times, interleaved, against a running mdserver; no new round after maxSeconds. */
export async function runHookLatency(calls = 50, maxSeconds = 300): Promise<HookLatencyResult> {
  if (!Number.isInteger(calls) || calls < 1 || calls > 1000) {
    throw new TypeError(`--calls needs a whole number from 1 to 1000, not "${calls}"`);
  }
  if (!(maxSeconds > 0)) throw new TypeError(`--max-seconds needs a positive number, not "${maxSeconds}"`);
  const warmup = 3;

  const dir = await Deno.makeTempDir({ prefix: "mdserver-bench-hook-" });
  const kv = await Deno.openKv(":memory:");
  await Deno.mkdir(join(dir, "userdata"));
  const configFile = join(dir, "mdserver.conf");
  const baseConfig = `[mdserver]
listen_address = 127.0.0.1
port = 0
userdata_dir = userdata

[admin]
socket = ${join(dir, "run", "admin.sock")}

[dnsmasq]
net_address = 127.88.0.0
net_prefix = 16
gateway = 127.88.0.1
interface = lo
base_dir = ${join(dir, "dnsmasq")}
run_dir = ${join(dir, "run")}
`;
  await Deno.writeTextFile(configFile, baseConfig);
  const service = await startService(await loadConfig(configFile), {
    log: silentLogger,
    kv,
  });
  try {
    const socket = service.adminSocket!;
    // What the hook reads: the same file.
    const hookConfig = join(dir, "hook.conf");
    await Deno.writeTextFile(hookConfig, baseConfig);
    const curlHook = join(dir, "curl-hook.sh");
    await Deno.writeTextFile(
      curlHook,
      `#!/bin/bash
case "$2 $3" in
"prepare begin" | "migrate begin" | "restore begin") ;;
*) exit 0 ;;
esac
curl -sS -m 2 -o /dev/null -H 'content-type: application/xml' --data-binary @- \\
  --unix-socket "${socket}" "http://mdserver/v1/instances" || echo "qemu-hook: $1: upload failed" >&2
exit 0
`,
      { mode: 0o755 },
    );
    const compiled = await tryCompile(dir, dir);
    // The wrapper install-hook writes, with the bench's folder (its
    // configuration, and the socket where production's is
    // /run/mdserver/admin.sock) allowed on top of the hook set.
    const flags = widen(await hookPermissionFlags(PROJECT_DIR), {
      read: dir,
      write: dir,
      net: `unix:${socket}`,
    });
    const denoDir = Deno.env.get("DENO_DIR") ?? null;
    const wrapperText = hookWrapper({
      denoPath: Deno.execPath(),
      projectDir: PROJECT_DIR,
      permissionFlags: flags,
      denoDir,
    });
    const wrapper = join(dir, "qemu");
    await Deno.writeTextFile(wrapper, wrapperText, { mode: 0o755 });
    const empty = join(dir, "empty.ts");
    await Deno.writeTextFile(empty, "export {};\n");
    const floor = join(dir, "qemu-floor");
    const hookPath = shellQuote(join(PROJECT_DIR, "hook.ts"));
    if (!wrapperText.includes(hookPath)) throw new Error("the wrapper does not name hook.ts");
    await Deno.writeTextFile(floor, wrapperText.replace(hookPath, shellQuote(empty)), { mode: 0o755 });
    const hookArgs = ["prepare", "begin", "-"];
    const variants: Variant[] = [
      { name: HOOK_VARIANTS.installed, skipped: null, command: "bash", args: [wrapper], uploads: true },
      { name: HOOK_VARIANTS.floor, skipped: null, command: "bash", args: [floor], uploads: false },
      {
        name: HOOK_VARIANTS.compiled,
        skipped: compiled.reason,
        command: compiled.path ?? "",
        args: [],
        uploads: true,
      },
      { name: HOOK_VARIANTS.curl, skipped: null, command: "bash", args: [curlHook], uploads: true },
    ];
    // What libvirt passes a hook: a few variables, nothing else inherited.
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      LC_ALL: "C",
      MDSERVER_CONFIG: hookConfig,
    };
    const times = new Map<string, number[]>(
      variants.map((variant) => [variant.name, []]),
    );
    const failures = new Map<string, string[]>(
      variants.map((variant) => [variant.name, []]),
    );
    let n = 0;
    let uploads = 0;
    let cutShort = false;
    const deadline = performance.now() + maxSeconds * 1000;
    // Interleaved, so that a change in machine load hits every variant alike.
    for (let call = 0; call < warmup + calls; call++) {
      if (call >= warmup && performance.now() > deadline) {
        cutShort = true;
        break;
      }
      for (const variant of variants) {
        if (variant.skipped) continue;
        n++;
        if (variant.uploads) uploads++;
        const result = await runOnce(
          { ...variant, args: [...variant.args, `bench-${n}`, ...hookArgs] },
          domainXml(n),
          env,
        );
        if (call < warmup) continue;
        times.get(variant.name)!.push(result.elapsed);
        if (!result.ok) {
          failures.get(variant.name)!.push(result.stderr || "failed");
        }
      }
    }
    const registered = await service.store.allocatedCount();

    const results: VariantResult[] = variants.map((variant) => {
      const sorted = [...times.get(variant.name)!].sort((a, b) => a - b);
      const round = (value: number) => Math.round(value * 10) / 10;
      const empty = sorted.length === 0;
      return {
        name: variant.name,
        skipped: variant.skipped,
        calls: sorted.length,
        failures: failures.get(variant.name)!.length,
        p50Ms: empty ? null : round(percentile(sorted, 50)),
        p99Ms: empty ? null : round(percentile(sorted, 99)),
        minMs: empty ? null : round(sorted[0]!),
        maxMs: empty ? null : round(sorted.at(-1)!),
        meanMs: empty ? null : round(
          sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
        ),
      };
    });

    const curl = results.find((result) => result.name === HOOK_VARIANTS.curl)!;
    const ratio = (a: number | null, b: number | null) =>
      a === null || b === null ? null : Math.round((a / b) * 100) / 100;
    const ratios = results
      .filter((result) => result !== curl && !result.skipped)
      .map((result) => ({
        name: result.name,
        p50: ratio(result.p50Ms, curl.p50Ms),
        p99: ratio(result.p99Ms, curl.p99Ms),
      }));

    const firstFailures: Record<string, string> = {};
    for (const [name, lines] of failures) {
      if (lines.length > 0) firstFailures[name] = lines[0]!;
    }
    return {
      benchmark: "hook_latency",
      date: new Date().toISOString(),
      deno: Deno.version.deno,
      cpus: navigator.hardwareConcurrency,
      calls,
      warmup,
      cutShort,
      registered,
      expected: uploads,
      results,
      ratios,
      firstFailures,
    };
  } finally {
    await service.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function main() {
  const option = (name: string, fallback: number) => {
    const index = Deno.args.indexOf(`--${name}`);
    return index >= 0 ? Number(Deno.args[index + 1]) : fallback;
  };
  const result = await runHookLatency(option("calls", 50), option("max-seconds", 300));
  const { warmup, results, registered } = result;
  const counted = Math.max(...results.map((variant) => variant.calls));
  const width = Math.max(...results.map((variant) => variant.name.length)) + 2;
  const cell = (value: number | null | undefined) =>
    (value === null || value === undefined ? "-" : value.toFixed(1)).padStart(8);
  const ratioCell = (value: number | null | undefined) =>
    (value === null || value === undefined ? "" : value.toFixed(2)).padStart(9);
  console.log(
    `hook wall time per call, ${counted} calls each after ${warmup} warm-up calls (ms)` +
      (result.cutShort ? `, cut short by --max-seconds` : ""),
  );
  console.log(
    `${"variant".padEnd(width)}${"p50".padStart(8)}${"p99".padStart(8)}${"min".padStart(8)}${"max".padStart(8)}${
      "mean".padStart(8)
    }${"p50 ratio".padStart(10)}${"p99 ratio".padStart(10)}  failures`,
  );
  for (const variant of results) {
    if (variant.skipped) {
      console.log(`${variant.name.padEnd(width)}${variant.skipped}`);
      continue;
    }
    const ratio = result.ratios.find((entry) => entry.name === variant.name);
    console.log(
      `${variant.name.padEnd(width)}${cell(variant.p50Ms)}${cell(variant.p99Ms)}${cell(variant.minMs)}${
        cell(variant.maxMs)
      }${cell(variant.meanMs)} ${ratioCell(ratio?.p50)} ${ratioCell(ratio?.p99)}  ${variant.failures}`,
    );
  }
  console.log("ratios are to bash + curl's p50 and p99 in this run");
  for (const [name, line] of Object.entries(result.firstFailures)) {
    console.log(`${name}: first failure: ${line}`);
  }
  console.log(`instances registered by the run: ${registered} (expected ${result.expected})`);
  console.log(JSON.stringify(result, null, 2));
}

if (import.meta.main) await main();
