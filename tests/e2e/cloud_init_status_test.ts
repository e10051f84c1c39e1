import assert from "node:assert/strict";
import { judgeCloudInitStatus } from "./cloud_init_status.ts";

// Shapes of `cloud-init status --format json` as 22.4.2 (bookworm) and 25.1.4 (trixie) print them.
const BOOKWORM_DONE = JSON.stringify({
  _schema_version: "1",
  boot_status_code: "enabled-by-generator",
  datasource: "nocloudnet",
  detail: "DataSourceNoCloudNet [seed=…][dsmode=net]",
  errors: [],
  last_update: "Thu, 01 Jan 1970 00:01:40 +0000",
  status: "done",
});
const TRIXIE_DONE = JSON.stringify({
  boot_status_code: "enabled-by-generator",
  datasource: "nocloud",
  detail: "DataSourceNoCloudNet [seed=…][dsmode=net]",
  errors: [],
  extended_status: "done",
  recoverable_errors: {},
  status: "done",
});
const TRIXIE_DEGRADED = JSON.stringify({
  datasource: "ec2",
  errors: [],
  extended_status: "degraded done",
  recoverable_errors: { WARNING: ["This cloud is not AWS…"], DEPRECATED: [] },
  status: "done",
});

Deno.test("judgeCloudInitStatus() passes a clean finish of either version", () => {
  for (const json of [BOOKWORM_DONE, TRIXIE_DONE]) {
    const verdict = judgeCloudInitStatus(json, 0);
    assert.equal(verdict.ok, true, verdict.problems.join("; "));
    assert.equal(verdict.status, "done");
  }
});

Deno.test("judgeCloudInitStatus() fails a degraded boot, an error, a running one and a non-zero --wait", () => {
  const degraded = judgeCloudInitStatus(TRIXIE_DEGRADED, 2);
  assert.equal(degraded.ok, false);
  assert.equal(degraded.status, "degraded done");
  assert.deepEqual(degraded.recoverable, { WARNING: ["This cloud is not AWS…"] });
  assert.ok(degraded.problems.some((problem) => problem.includes("--wait exited 2")));

  const error = judgeCloudInitStatus(JSON.stringify({ status: "error", errors: ["boom"] }), 1);
  assert.equal(error.ok, false);
  assert.ok(error.problems.includes("errors: boom"), error.problems.join("; "));

  assert.equal(judgeCloudInitStatus(JSON.stringify({ status: "running", errors: [] }), 0).ok, false);
  assert.equal(judgeCloudInitStatus(BOOKWORM_DONE, 2).ok, false);
  assert.equal(judgeCloudInitStatus("sudo: a password is required", 0).ok, false);
});
