import assert from "node:assert/strict";
import {
  applyEvent,
  type Boot,
  eventBelongs,
  noteFetch,
  openBoot,
  parseReportingEvent,
  type ReportingEvent,
} from "./mod.ts";

function event(type: "start" | "finish", name: string, result?: string, description = name): ReportingEvent {
  const parsed = parseReportingEvent(JSON.stringify({
    event_type: type,
    name,
    description,
    origin: "cloudinit",
    timestamp: 1,
    ...(result ? { result } : {}),
  }));
  assert.ok(typeof parsed !== "string", parsed as string);
  return parsed;
}

function play(boot: Boot, events: ReportingEvent[]): Boot {
  return events.reduce((current, next) => applyEvent(current, next, "2026-12-01T00:00:01Z"), boot);
}

Deno.test("a boot moves forward only: fetches, then each stage, and modules-final's finish ends it", () => {
  let boot = openBoot(1, "start", "2026-12-01T00:00:00Z");
  boot = noteFetch(boot, "user-data", "2026-12-01T00:00:00Z");
  assert.equal(boot.phase, "user-data fetched");
  assert.equal(noteFetch(boot, "metadata", "x").phase, "user-data fetched");
  boot = play(boot, [event("start", "init-network/config-ssh"), event("finish", "init-network/config-ssh", "SUCCESS")]);
  assert.equal(boot.phase, "init-network");
  boot = play(boot, [event("finish", "init-network", "SUCCESS"), event("start", "modules-final/config-phone_home")]);
  assert.equal(boot.phase, "modules-final");
  boot = play(boot, [event("finish", "modules-final", "SUCCESS")]);
  assert.equal(boot.phase, "done");
  assert.equal(boot.events, 5);
  assert.equal(boot.stages["init-network"]?.result, "SUCCESS");
});

Deno.test("a WARN makes a boot degraded, a FAIL failed, and the first FAIL is the problem", () => {
  const start = openBoot(1, "start", "t");
  const warned = play(start, [
    event("finish", "modules-config/config-apt", "WARN", "apt mirror slow"),
    event("finish", "modules-final", "WARN"),
  ]);
  assert.equal(warned.phase, "degraded");
  assert.deepEqual([warned.problem?.module, warned.problem?.message], ["config-apt", "apt mirror slow"]);
  const failed = play(start, [
    event("finish", "modules-config/config-apt", "WARN"),
    event("finish", "modules-config/config-runcmd", "FAIL", "running config-runcmd"),
    event("finish", "modules-config", "FAIL"),
    event("finish", "modules-final", "FAIL"),
  ]);
  assert.equal(failed.phase, "failed");
  assert.deepEqual([failed.problem?.stage, failed.problem?.module], ["modules-config", "config-runcmd"]);
});

Deno.test("an earlier stage than the boot reached, or any but the last after its end, is a new boot", () => {
  const running = play(openBoot(1, "start", "t"), [event("start", "modules-config/config-runcmd")]);
  assert.equal(eventBelongs(running, event("start", "modules-config/config-apt")), "this");
  assert.equal(eventBelongs(running, event("start", "init-network/config-ssh")), "new");
  const ended = play(running, [event("finish", "modules-final", "SUCCESS")]);
  assert.equal(eventBelongs(ended, event("finish", "modules-final", "SUCCESS")), "stale");
  assert.equal(eventBelongs(ended, event("start", "init-local/check-cache")), "new");
});

Deno.test("parseReportingEvent refuses what is not a cloud-init event and cleans control characters", () => {
  assert.equal(typeof parseReportingEvent("nope"), "string");
  assert.equal(typeof parseReportingEvent('{"event_type":"finish","name":"x","description":""}'), "string");
  const parsed = event("start", "init-network/\u001b[31mred", undefined, "a\u202eb");
  assert.equal(parsed.name, "init-network/?[31mred");
  assert.equal(parsed.description, "a?b");
  assert.equal(parsed.stage, "init-network");
  assert.equal(event("start", "single/config-x").stage, null);
});
