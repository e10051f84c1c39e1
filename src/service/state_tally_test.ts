import assert from "node:assert/strict";
import { emptyAccessRecord } from "../store/mod.ts";
import { StateTally } from "./state_tally.ts";

Deno.test("StateTally counts instances by boot state as they change, every state present", () => {
  const tally = new StateTally();
  const counts = () => Object.fromEntries(tally.counts());
  assert.deepEqual(counts(), { registered: 0, "metadata fetched": 0, "user-data fetched": 0, booted: 0, stopped: 0 });
  tally.setInstance({ uuid: "a", state: "registered" });
  tally.setInstance({ uuid: "b", state: "registered" });
  tally.setAccess("a", { ...emptyAccessRecord(), firstMetadataAt: "2026-01-01T00:00:00Z" });
  assert.equal(counts()["metadata fetched"], 1);
  assert.equal(counts().registered, 1);
  tally.setInstance({ uuid: "b", state: "stopped" });
  tally.remove("a");
  tally.setAccess("gone", { ...emptyAccessRecord(), bootedAt: "2026-01-01T00:00:00Z" });
  assert.deepEqual(counts(), { registered: 0, "metadata fetched": 0, "user-data fetched": 0, booted: 0, stopped: 1 });
  assert.equal(tally.size, 1);
});
