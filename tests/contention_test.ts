import assert from "node:assert/strict";
import type { Logger } from "../src/log/log.ts";
import { startTestService } from "./_harness.ts";

Deno.test("concurrent phone-homes of one guest log no error and no stack trace; contention is at most a line per burst", async () => {
  const lines: { level: string; line: string }[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warning: (line) => lines.push({ level: "warning", line }),
    error: (line) => lines.push({ level: "error", line }),
  };
  // One guest may hold 32 connections by default; this one is let in 300 at once to make the store contend.
  const t = await startTestService({ log, ini: "[limits]\nmax_connections_per_source = 400\n" });
  try {
    const { ipv4 } = await t.register({
      name: "busy",
      uuid: "0000000d-0000-4000-8000-000000000001",
      mac: "52:54:00:0d:00:01",
    });
    const started = performance.now();
    const statuses = await Promise.all(Array.from({ length: 300 }, async (_, i) => {
      const response = await t.guestFetch(ipv4, "/phone-home", {
        method: "POST",
        body: new URLSearchParams({ hostname: `busy${i}` }),
      });
      await response.body?.cancel();
      return response.status;
    }));
    const seconds = (performance.now() - started) / 1000;
    assert.ok(statuses.every((status) => status === 200 || status === 503), `statuses: ${[...new Set(statuses)]}`);
    assert.deepEqual(lines.filter((entry) => entry.level === "error"), []);
    assert.ok(lines.every((entry) => !/\n\s+at /.test(entry.line)), "a stack trace was logged");
    const busy = lines.filter((entry) => entry.line.startsWith("store busy: "));
    assert.ok(busy.length <= 1 + Math.ceil(seconds / 10), `${busy.length} store-busy lines in ${seconds.toFixed(1)} s`);
  } finally {
    await t.close();
  }
});
