import assert from "node:assert/strict";
import { readInstance } from "./instance_view.ts";

Deno.test("readInstance() reads the admin API's snake_case answer with its access record", () => {
  const view = readInstance({
    uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
    name: "web01",
    instance_id: "i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b",
    mac: "52:54:00:12:34:56",
    ipv4: "10.122.0.2",
    state: "registered",
    boot_state: "booted",
    access: {
      first_metadata_at: "2026-12-01T22:58:25.731Z",
      user_data_at: "2026-12-01T22:58:26.147Z",
      booted_at: "2026-12-01T23:00:21.871Z",
      host_keys: { "ssh-ed25519": "ssh-ed25519 AAAA" },
    },
  });
  assert.equal(view.instanceId, "i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b");
  assert.equal(view.bootState, "booted");
  assert.equal(view.bootedAt, "2026-12-01T23:00:21.871Z");
  assert.deepEqual(view.hostKeys, { "ssh-ed25519": "ssh-ed25519 AAAA" });
});

Deno.test("readInstance() reads the camelCase answer too, with nothing recorded yet", () => {
  const view = readInstance({ name: "web01", instanceId: "i-1", ipv4: "10.122.0.2", state: "stopped" });
  assert.equal(view.instanceId, "i-1");
  assert.equal(view.state, "stopped");
  assert.equal(view.bootedAt, null);
  assert.deepEqual(view.hostKeys, {});
});
