import assert from "node:assert/strict";
import { AccessRecorder, bootState, hostKeysFromPhoneHome, knownHostsLines } from "./access.ts";
import type { Instance } from "./instance.ts";
import { silentLogger } from "./log.ts";

const INSTANCE = { uuid: "u1", state: "registered" } as Instance;

Deno.test("AccessRecorder writes the first fetch, throttles the rest and always writes user-data", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await kv.set(["instances", "u1"], INSTANCE);
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const recorder = new AccessRecorder(kv, { log: silentLogger, now: () => new Date(clock), minIntervalMs: 10_000 });
    recorder.noteMetadata("u1");
    await recorder.flush();
    clock += 1_000;
    recorder.noteMetadata("u1");
    await recorder.flush();
    let record = await recorder.get("u1");
    assert.equal(record?.firstMetadataAt, "2026-01-01T00:00:00.000Z");
    assert.equal(record?.lastMetadataAt, "2026-01-01T00:00:00.000Z");
    assert.equal(bootState(INSTANCE, record), "metadata fetched");

    clock += 1_000;
    recorder.noteUserData("u1");
    await recorder.flush();
    record = await recorder.get("u1");
    assert.equal(record?.userDataAt, "2026-01-01T00:00:02.000Z");
    assert.equal(bootState(INSTANCE, record), "user-data fetched");

    clock += 30_000;
    recorder.noteMetadata("u1");
    await recorder.flush();
    assert.equal((await recorder.get("u1"))?.lastMetadataAt, "2026-01-01T00:00:32.000Z");

    const booted = await recorder.recordBoot("u1", "web01", { "ssh-ed25519": "ssh-ed25519 AAAA" });
    assert.equal(bootState(INSTANCE, booted), "booted");
    assert.equal(bootState({ ...INSTANCE, state: "stopped" }, booted), "stopped");
  } finally {
    kv.close();
  }
});

Deno.test("AccessRecorder writes nothing for an instance that no longer exists", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const recorder = new AccessRecorder(kv, { log: silentLogger });
    recorder.noteMetadata("gone");
    await recorder.flush();
    assert.equal(await recorder.get("gone"), null);
  } finally {
    kv.close();
  }
});

Deno.test("hostKeysFromPhoneHome() keeps only well-formed keys", () => {
  const fields = new URLSearchParams({
    pub_key_ed25519: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc root@web01\n",
    pub_key_rsa: "ssh-rsa AAAAB3Nza== root@web01",
    pub_key_ecdsa: "$(reboot)",
    instance_id: "i-1",
  });
  assert.deepEqual(hostKeysFromPhoneHome(fields), {
    "ssh-ed25519": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc",
    "ssh-rsa": "ssh-rsa AAAAB3Nza==",
  });
});

Deno.test("knownHostsLines() lists names, FQDN and address for every key", () => {
  assert.deepEqual(
    knownHostsLines([{
      names: ["web01", "web01.lab"],
      ipv4: "10.122.0.5",
      hostKeys: { "ssh-rsa": "ssh-rsa BBBB", "ssh-ed25519": "ssh-ed25519 AAAA" },
    }]),
    ["web01,web01.lab,10.122.0.5 ssh-ed25519 AAAA", "web01,web01.lab,10.122.0.5 ssh-rsa BBBB"],
  );
});
