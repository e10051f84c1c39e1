import assert from "node:assert/strict";
import { AccessRecorder, bootState, hostKeysFromPhoneHome, knownHostsLines } from "./mod.ts";
import type { Instance } from "./instance.ts";
import { silentLogger } from "../log/log.ts";
import type { KeyValueBackend } from "./backend.ts";
import { type BackendCase, backendSuite } from "../../tests/_store_backends.ts";

/** Writes a key as a test sets up what it needs. */
async function put(backend: KeyValueBackend, key: (string | number)[], value: unknown): Promise<void> {
  await backend.commit([], [{ type: "set", key, value }]);
}

async function read(backend: KeyValueBackend, key: (string | number)[]): Promise<unknown> {
  return (await backend.getMany([key]))[0]!.value;
}

const cases: BackendCase[] = [];

const INSTANCE = { uuid: "u1", state: "registered" } as Instance;

cases.push({
  name: "AccessRecorder writes the first fetch, throttles the rest and always writes user-data",
  body: async ({ backend: kv }) => {
    await put(kv, ["instances", "u1"], INSTANCE);
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
  },
});

cases.push({
  name: "AccessRecorder writes nothing for an instance that no longer exists",
  body: async ({ backend: kv }) => {
    const recorder = new AccessRecorder(kv, { log: silentLogger });
    recorder.noteMetadata("gone");
    await recorder.flush();
    assert.equal(await recorder.get("gone"), null);
  },
});

cases.push({
  name: "AccessRecorder writes many instances' notes behind in batches, and reads see them at once",
  body: async ({ backend: kv }) => {
    // More instances than one commit takes, one of them deleted before the batch.
    const uuids = Array.from({ length: 120 }, (_, index) => `u${index}`);
    for (const uuid of uuids.slice(0, -1)) await put(kv, ["instances", uuid], { ...INSTANCE, uuid });
    const clock = Date.parse("2026-01-01T00:00:00Z");
    const recorder = new AccessRecorder(kv, { log: silentLogger, now: () => new Date(clock), batchDelayMs: 60_000 });
    for (const uuid of uuids) recorder.noteMetadata(uuid);
    for (const uuid of uuids.slice(0, 10)) recorder.noteUserData(uuid);
    // Written behind: nothing yet in the store.
    assert.equal(await read(kv, ["access", "u5"]), null);
    // A phone-home written meanwhile is kept when the batch lands.
    await recorder.recordBoot("u7", "web07", {});
    // A read writes what is gathered first.
    assert.equal(bootState(INSTANCE, await recorder.get("u3")), "user-data fetched");
    await recorder.flush();
    for (const uuid of uuids.slice(0, -1)) {
      assert.equal(
        ((await read(kv, ["access", uuid])) as { firstMetadataAt: string } | null)?.firstMetadataAt,
        "2026-01-01T00:00:00.000Z",
      );
    }
    assert.equal(bootState(INSTANCE, await recorder.get("u7")), "booted");
    assert.equal(bootState(INSTANCE, await recorder.get("u50")), "metadata fetched");
    assert.equal(await recorder.get("u119"), null);
  },
});

cases.push({
  name: "AccessRecorder.resetBoot() drops notes from before the restart",
  body: async ({ backend: kv }) => {
    await put(kv, ["instances", "u1"], INSTANCE);
    const recorder = new AccessRecorder(kv, { log: silentLogger, batchDelayMs: 60_000 });
    await recorder.recordBoot("u1", "web01", { "ssh-ed25519": "ssh-ed25519 AAAA" });
    recorder.noteUserData("u1");
    await recorder.resetBoot("u1");
    await recorder.flush();
    const record = await recorder.get("u1");
    assert.equal(bootState(INSTANCE, record), "registered");
    assert.deepEqual(record?.hostKeys, { "ssh-ed25519": "ssh-ed25519 AAAA" });
    // The next boot's first fetch is noted again.
    recorder.noteMetadata("u1");
    assert.equal(bootState(INSTANCE, await recorder.get("u1")), "metadata fetched");
  },
});

backendSuite("AccessRecorder", cases);

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
