#!/usr/bin/env -S deno run -P=bench
/**
 * Costs that must stay flat in the number of instances, with N = 10 and
 * N = 10,000 (or the counts given): importing N md_server entries (the
 * import's own path), starting the service over them with an empty
 * dnsmasq base_dir (time until both listeners answer, and until the record
 * rebuild behind them is done), a /metrics scrape (median of 20, 2 s after the start), and gc
 * removing every instance through the admin API in bulk.
 *
 *   deno run -P=bench bench/scale.ts [10 10000]
 *
 * Prints a table and one line of JSON.
 *
 * @module
 */

import { join } from "node:path";
import { callAdmin } from "../src/cli/admin_client.ts";
import { adminStore } from "../src/cli/ctl.ts";
import { collectGarbage } from "../src/cli/gc.ts";
import { importMdServerEntries, type MdServerEntry } from "../src/cli/md_server_import.ts";
import { loadConfig } from "../src/config/mod.ts";
import { silentLogger } from "../src/log/log.ts";
import { createStore, startService } from "../src/service/service.ts";

/** One row of the table. */
export interface ScaleRow {
  instances: number;
  importS: number;
  listenersUpMs: number;
  startedS: number;
  scrapeMs: number;
  gcS: number;
}

/** A loopback port free right now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}

function entry(index: number): MdServerEntry {
  return {
    domain_name: `vm${index}`,
    domain_uuid: `${hex(index, 8)}-0000-4000-8000-${hex(index, 12)}`,
    domain_metadata: {},
    mds_mac: `52:54:00:${hex((index >> 16) & 255, 2)}:${hex((index >> 8) & 255, 2)}:${hex(index & 255, 2)}`,
    mds_ipv4: null,
  };
}

async function median(times: number, run: () => Promise<void>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

/** Measures one instance count in a fresh temporary folder. */
export async function measureScale(count: number): Promise<ScaleRow> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-scale-" });
  try {
    await Deno.mkdir(join(dir, "userdata"));
    const file = join(dir, "mdserver.conf");
    const metadataPort = freePort();
    await Deno.writeTextFile(
      file,
      `[mdserver]\nlisten_address = 127.0.0.1\nport = ${metadataPort}\nuserdata_dir = userdata\nkv_file = mdserver.kv\n` +
        `[admin]\nsocket = ${join(dir, "admin.sock")}\n` +
        "[dnsmasq]\nnet_prefix = 16\nbase_dir = dnsmasq\nrun_dir = run\nmanage = no\n",
    );
    const config = await loadConfig(file);
    const kv = await Deno.openKv(config.mdserver.kvFile);
    let started = performance.now();
    await importMdServerEntries(createStore(kv, config), Array.from({ length: count }, (_, i) => entry(i + 1)));
    const importS = (performance.now() - started) / 1000;
    kv.close();

    // Listeners up: the admin socket and the metadata port polled while the service starts.
    const clientConfig = file;
    started = performance.now();
    const starting = startService(config, { log: silentLogger });
    let listenersUpMs = NaN;
    for (let i = 0; i < 6000; i++) {
      try {
        await (await callAdmin({ configFile: clientConfig, path: "/health", timeoutMs: 1000 })).body?.cancel();
        await (await fetch(`http://127.0.0.1:${metadataPort}/`)).body?.cancel();
        listenersUpMs = performance.now() - started;
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    const service = await starting;
    const startedS = (performance.now() - started) / 1000;
    // Settled: the count by state behind the listeners is done (its log line), then a warm-up scrape.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await (await callAdmin({ configFile: clientConfig, path: "/metrics" })).text();
    const scrapeMs = await median(20, async () => {
      await (await callAdmin({ configFile: clientConfig, path: "/metrics" })).text();
    });
    started = performance.now();
    await collectGarbage(adminStore({ configFile: clientConfig }), {
      listDomains: () => Promise.resolve(["none"]),
      force: true,
    });
    const gcS = (performance.now() - started) / 1000;
    await service.shutdown();
    return { instances: count, importS, listenersUpMs, startedS, scrapeMs, gcS };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const counts = Deno.args.length > 0 ? Deno.args.map(Number) : [10, 10_000];
  const rows: ScaleRow[] = [];
  for (const count of counts) rows.push(await measureScale(count));
  const lines = [
    "instances  import s  listeners up ms  started s  /metrics ms  gc s",
    ...rows.map((row) =>
      `${String(row.instances).padStart(9)}  ${row.importS.toFixed(2).padStart(8)}  ${
        row.listenersUpMs.toFixed(0).padStart(15)
      }  ${row.startedS.toFixed(2).padStart(9)}  ${row.scrapeMs.toFixed(2).padStart(11)}  ${
        row.gcS.toFixed(2).padStart(4)
      }`
    ),
    JSON.stringify(rows),
  ];
  await Deno.stdout.write(new TextEncoder().encode(lines.join("\n") + "\n"));
}
