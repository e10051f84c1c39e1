#!/usr/bin/env -S deno run -P=bench
/**
 * One hostile guest against the guest HTTP server (src/http_server/): from
 * one source address (127.0.0.1) it opens `idle` connections that send
 * nothing and `slow` connections that send a POST head with
 * `Content-Length: 65536` and ten bytes of body, then nothing. Meanwhile
 * another guest (127.0.0.77) asks for a document every 100 ms. The server
 * runs as its own process (bench/guest_server_constant.ts); its RSS is read
 * from /proc every 250 ms.
 *
 * Two phases: the default limits (the per-source cap turns the excess away
 * at once), then caps raised to 10,000 (every connection is held until its
 * head or body timeout closes it, which shows what one held connection
 * costs). Each phase holds the flood `holdSeconds`, longer than the body
 * timeout, and counts how many flood connections the server closed.
 *
 *   deno run -P=bench bench/guest_flood.ts [--idle 5000] [--slow 2000] [--hold 12]
 *
 * Prints a table and one line of JSON; the whole run takes under 60 s.
 *
 * @module
 */

import { startConstant } from "./guest_server.ts";
import { processMemory } from "./server_process.ts";

/** The bound the server's RSS stays under with the default limits, MiB (README, docs/http_server.md). */
export const RSS_BOUND_MIB = 100;

/** What one phase measured. */
export interface FloodPhase {
  phase: string;
  limits: Record<string, number>;
  /** Flood connections that connected. */
  opened: number;
  /** Seconds to open them all. */
  openSeconds: number;
  /** Flood connections the server had closed 1 s after the last was opened. */
  closedWithin1s: number;
  /** Flood connections the server had closed by the end of the hold. */
  closedByEnd: number;
  /** Flood connections the server answered 503. */
  answered503: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  /** The other guest: requests, failures, slowest answer. */
  probes: number;
  probeFailures: number;
  probeMaxMs: number;
  /** The server's counters at the end of the phase. */
  stats: unknown;
}

const SLOW_HEAD = new TextEncoder().encode(
  "POST /phone-home HTTP/1.1\r\nHost: 169.254.169.254\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
    "Content-Length: 65536\r\n\r\npub_key_rs",
);

/** A flood connection, watched until the server closes it. */
interface Held {
  conn: Deno.TcpConn;
  closed: Promise<{ at: number; answered503: boolean }>;
}

async function hold(port: number, slow: boolean): Promise<Held | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    if (slow) await conn.write(SLOW_HEAD);
  } catch {
    return null;
  }
  const closed = (async () => {
    const buffer = new Uint8Array(64);
    let answered503 = false;
    try {
      for (;;) {
        const count = await conn.read(buffer);
        if (count === null) break;
        if (new TextDecoder().decode(buffer.subarray(0, count)).startsWith("HTTP/1.1 503")) answered503 = true;
      }
    } catch {
      // reset by the server: closed too
    }
    return { at: performance.now(), answered503 };
  })();
  return { conn, closed };
}

async function runPhase(
  phase: string,
  limits: Record<string, number>,
  counts: { idle: number; slow: number; holdSeconds: number },
): Promise<FloodPhase> {
  const server = await startConstant("guest server", "bench/guest_server_constant.ts", [
    "--limits",
    JSON.stringify(limits),
  ]);
  const port = Number(new URL(server.url).port);
  const held: Held[] = [];
  let stop = false;
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rssBefore = (await processMemory(server.pid)).rssMiB;
    let rssPeak = rssBefore;
    const sampling = (async () => {
      while (!stop) {
        rssPeak = Math.max(rssPeak, (await processMemory(server.pid)).rssMiB);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    const client = Deno.createHttpClient({ localAddress: "127.0.0.77" });
    let probes = 0;
    let probeFailures = 0;
    let probeMaxMs = 0;
    const probing = (async () => {
      while (!stop) {
        const started = performance.now();
        try {
          const response = await fetch(`${server.url}/latest/meta-data/instance-id`, {
            client,
            signal: AbortSignal.timeout(1000),
          });
          await response.text();
          if (response.status !== 200) probeFailures++;
        } catch {
          probeFailures++;
        }
        probes++;
        probeMaxMs = Math.max(probeMaxMs, performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const opening = performance.now();
    const plan = [...Array(counts.idle).fill(false), ...Array(counts.slow).fill(true)] as boolean[];
    for (let i = 0; i < plan.length; i += 250) {
      const batch = await Promise.all(plan.slice(i, i + 250).map((slow) => hold(port, slow)));
      for (const entry of batch) if (entry) held.push(entry);
    }
    const openedAt = performance.now();
    const closedAt: number[] = [];
    let answered503 = 0;
    for (const entry of held) {
      entry.closed.then(({ at, answered503: was503 }) => {
        closedAt.push(at);
        if (was503) answered503++;
      });
    }
    await new Promise((resolve) => setTimeout(resolve, counts.holdSeconds * 1000));
    stop = true;
    await Promise.all([sampling, probing]);
    client.close();
    const stats = await (await fetch(`${server.url}/_stats`)).json();
    return {
      phase,
      limits,
      opened: held.length,
      openSeconds: Math.round(openedAt - opening) / 1000,
      closedWithin1s: closedAt.filter((at) => at <= openedAt + 1000).length,
      closedByEnd: closedAt.length,
      answered503,
      rssBeforeMiB: rssBefore,
      rssPeakMiB: rssPeak,
      probes,
      probeFailures,
      probeMaxMs: Math.round(probeMaxMs),
      stats,
    };
  } finally {
    stop = true;
    for (const entry of held) {
      try {
        entry.conn.close();
      } catch {
        // closed by the server
      }
    }
    await server.stop();
  }
}

/** Runs both phases. */
export async function runGuestFlood(
  options: { idle?: number; slow?: number; holdSeconds?: number; progress?: (line: string) => void } = {},
): Promise<FloodPhase[]> {
  const counts = { idle: options.idle ?? 5000, slow: options.slow ?? 2000, holdSeconds: options.holdSeconds ?? 12 };
  const progress = options.progress ?? (() => {});
  progress(`flood: ${counts.idle} idle + ${counts.slow} slow-body connections from 127.0.0.1, default limits`);
  const defaults = await runPhase("default limits", {}, counts);
  progress("flood: the same with the connection caps raised to 10,000");
  const raised = await runPhase("caps raised", { maxConnectionsPerSource: 10_000, maxConnections: 10_000 }, counts);
  return [defaults, raised];
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const index = Deno.args.indexOf(`--${name}`);
    const value = index >= 0 ? Number(Deno.args[index + 1]) : fallback;
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`--${name} needs a whole number`);
    return value;
  };
  const phases = await runGuestFlood({
    idle: arg("idle", 5000),
    slow: arg("slow", 2000),
    holdSeconds: arg("hold", 12),
    progress: (line) => console.error(line),
  });
  const rows = [[
    "phase",
    "opened",
    "closed ≤1 s",
    "closed by end",
    "503",
    "RSS before MiB",
    "RSS peak MiB",
    "probes",
    "probe failures",
    "probe max ms",
  ]];
  for (const phase of phases) {
    rows.push([
      phase.phase,
      String(phase.opened),
      String(phase.closedWithin1s),
      String(phase.closedByEnd),
      String(phase.answered503),
      String(phase.rssBeforeMiB),
      String(phase.rssPeakMiB),
      String(phase.probes),
      String(phase.probeFailures),
      String(phase.probeMaxMs),
    ]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  console.log(rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ")).join("\n"));
  for (const phase of phases) console.log(`${phase.phase}: server stats ${JSON.stringify(phase.stats)}`);
  const [defaults] = phases;
  const verdict = (ok: boolean) => ok ? "met" : "NOT MET";
  console.log(
    `default limits: RSS peak ${defaults!.rssPeakMiB} MiB ≤ ${RSS_BOUND_MIB} MiB ${
      verdict(defaults!.rssPeakMiB <= RSS_BOUND_MIB)
    }; other source answered within 1 s ${
      verdict(defaults!.probeFailures === 0 && defaults!.probeMaxMs < 1000)
    }; every flood connection closed ${verdict(defaults!.closedByEnd === defaults!.opened)}`,
  );
  console.log(JSON.stringify({ benchmark: "guest_flood", phases }));
}

if (import.meta.main) await main();
