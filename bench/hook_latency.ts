/**
 * Wall time of one libvirt hook call, as libvirt sees it: process start to
 * exit, domain XML on stdin, uploading to a running mdserver on loopback.
 *
 *   deno task bench:hook [--calls 50]
 *
 * Compares, in the same run and interleaved call by call:
 * - `deno run hook.ts` (what the installed wrapper execs);
 * - the compiled hook (`deno compile`), when it can be built here;
 * - a bash + curl hook doing the same upload (md_server's approach, with the
 *   endpoint hard-coded instead of read from the configuration).
 *
 * Every call registers a new domain, so each one does the full work of a
 * first start. Prints a table, then the results as JSON.
 *
 * @module
 */

import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
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
}

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
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(xml)).catch(() => {});
  await writer.close().catch(() => {});
  const output = await child.output();
  const elapsed = performance.now() - started;
  const stderr = new TextDecoder().decode(output.stderr).trim();
  return {
    elapsed,
    ok: output.success && stderr === "" && output.stdout.length === 0,
    stderr,
  };
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
  registered: number;
  expected: number;
  results: VariantResult[];
  /** The first failure of each variant that failed. */
  firstFailures: Record<string, string>;
}

/** Runs each hook variant `calls` times, interleaved, against a running mdserver. */
export async function runHookLatency(calls = 50): Promise<HookLatencyResult> {
  if (!Number.isInteger(calls) || calls < 1) {
    throw new TypeError(`--calls needs a positive whole number`);
  }
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
    const hookArgs = ["prepare", "begin", "-"];
    const variants: Variant[] = [
      {
        name: "deno run hook.ts",
        skipped: null,
        command: "deno",
        args: [
          "run",
          "-q",
          "--no-prompt",
          "-P=hook",
          `--allow-read=${dir}`,
          // The bench's socket, where production's is /run/mdserver/admin.sock.
          `--allow-write=${dir}`,
          `--allow-net=127.0.0.1,unix:${socket}`,
          "--config",
          join(PROJECT_DIR, "deno.json"),
          join(PROJECT_DIR, "hook.ts"),
        ],
      },
      {
        name: "compiled hook",
        skipped: compiled.reason,
        command: compiled.path ?? "",
        args: [],
      },
      { name: "bash + curl", skipped: null, command: "bash", args: [curlHook] },
    ];
    const env = { MDSERVER_CONFIG: hookConfig };
    const times = new Map<string, number[]>(
      variants.map((variant) => [variant.name, []]),
    );
    const failures = new Map<string, string[]>(
      variants.map((variant) => [variant.name, []]),
    );
    let n = 0;
    // Interleaved, so that a change in machine load hits every variant alike.
    for (let call = 0; call < warmup + calls; call++) {
      for (const variant of variants) {
        if (variant.skipped) continue;
        n++;
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
      registered,
      expected: n,
      results,
      firstFailures,
    };
  } finally {
    await service.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function main() {
  const callsIndex = Deno.args.indexOf("--calls");
  const result = await runHookLatency(callsIndex >= 0 ? Number(Deno.args[callsIndex + 1]) : 50);
  const { calls, warmup, results, registered } = result;
  {
    const cell = (value: number | null) => (value === null ? "-" : value.toFixed(1)).padStart(8);
    console.log(
      `hook wall time per call, ${calls} calls each after ${warmup} warm-up calls (ms)`,
    );
    console.log(
      `${"variant".padEnd(18)}${"p50".padStart(8)}${"p99".padStart(8)}${"min".padStart(8)}${"max".padStart(8)}${
        "mean".padStart(8)
      }  failures`,
    );
    for (const result of results) {
      if (result.skipped) {
        console.log(`${result.name.padEnd(18)}${result.skipped}`);
        continue;
      }
      console.log(
        `${result.name.padEnd(18)}${cell(result.p50Ms)}${cell(result.p99Ms)}${cell(result.minMs)}${cell(result.maxMs)}${
          cell(result.meanMs)
        }  ${result.failures}`,
      );
    }
    for (const [name, line] of Object.entries(result.firstFailures)) {
      console.log(`${name}: first failure: ${line}`);
    }
    console.log(
      `instances registered by the run: ${registered} (expected ${result.expected})`,
    );
    console.log(JSON.stringify(result, null, 2));
  }
}

if (import.meta.main) await main();
