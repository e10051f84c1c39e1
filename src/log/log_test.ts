import assert from "node:assert/strict";
import { createLogger, MAX_LOG_LINE } from "./log.ts";

function capture(options: { journald: boolean; level?: string }) {
  const lines: string[] = [];
  const log = createLogger({
    ...options,
    write: (line) => lines.push(line),
    now: () => new Date("2026-01-02T03:04:05Z"),
  });
  return { log, lines };
}

Deno.test("createLogger() writes one line per event, with a timestamp outside journald", () => {
  const { log, lines } = capture({ journald: false });
  log.info("upload: web01\nsecond line");
  assert.deepEqual(lines, ["2026-01-02T03:04:05.000Z INFO upload: web01\\nsecond line"]);
});

Deno.test("createLogger() under journald writes a syslog priority and no timestamp", () => {
  const { log, lines } = capture({ journald: true });
  log.error("broken");
  log.info("fine");
  assert.deepEqual(lines, ["<3>broken", "<6>fine"]);
});

Deno.test("createLogger() drops lines below the configured level", () => {
  const { log, lines } = capture({ journald: true, level: "warning" });
  log.debug("no");
  log.info("no");
  log.warning("yes");
  assert.deepEqual(lines, ["<4>yes"]);
});

Deno.test("createLogger() clips a huge line, saying how much it left out", () => {
  const { log, lines } = capture({ journald: true });
  log.info("x".repeat(MAX_LOG_LINE + 500));
  assert.equal(lines[0], `<6>${"x".repeat(MAX_LOG_LINE)}… (500 more characters)`);
});
