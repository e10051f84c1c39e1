import assert from "node:assert/strict";
import type { Logger } from "./log.ts";
import { BurstLog } from "./burst_log.ts";

function recording(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const push = (line: string) => lines.push(line);
  return { log: { debug: push, info: push, warning: push, error: push }, lines };
}

Deno.test("BurstLog logs the first event of a burst and then one line per interval, however many events", () => {
  const { log, lines } = recording();
  let now = 0;
  const burst = new BurstLog(log, { what: "store busy", intervalMs: 10_000, now: () => now });
  // 2,000 events over 25 s.
  for (let i = 0; i < 2_000; i++) {
    now = i * 12.5;
    burst.note(`commit conflict ${i}`);
  }
  assert.deepEqual(lines, [
    "store busy: commit conflict 0; more of it is counted and logged at most every 10 s",
    "store busy: 799 retries in the last 10 s (last: commit conflict 799)",
    "store busy: 800 retries in the last 10 s (last: commit conflict 1599)",
  ]);
  // Quiet for a while: the next event starts a new burst and is logged at once.
  now = 60_000;
  burst.note("commit conflict again");
  assert.deepEqual(lines.slice(3), [
    "store busy: 400 retries in the last 10 s (last: commit conflict 1999)",
    "store busy: commit conflict again; more of it is counted and logged at most every 10 s",
  ]);
});
