import assert from "node:assert/strict";
import type { KeyValueBackend } from "../src/store/mod.ts";
import { domainXml, startTestService } from "./_harness.ts";

// Two domains whose UUIDs agree in their first 17 hex digits (and more): the
// old `i-` + 17 digits gave them the same instance-id.
const FIRST = { name: "twin1", uuid: "6f1a3c2e-5b7d-4e8f-9a00-000000000001", mac: "52:54:00:aa:00:01" };
const SECOND = { name: "twin2", uuid: "6f1a3c2e-5b7d-4e8f-9a00-000000000002", mac: "52:54:00:aa:00:02" };

Deno.test("instance-ids of domains whose UUIDs share their first 17 hex digits differ; DELETE by id removes that one", async () => {
  const t = await startTestService();
  try {
    const first = await t.register(FIRST);
    const second = await t.register(SECOND);
    assert.equal(first.instance_id, "i-6f1a3c2e5b7d4e8f9a00000000000001");
    assert.equal(second.instance_id, "i-6f1a3c2e5b7d4e8f9a00000000000002");
    for (const guest of [first, second]) {
      const response = await t.guestFetch(guest.ipv4, "/latest/meta-data/instance-id");
      assert.equal(await response.text(), guest.instance_id);
    }
    const byId = await t.adminFetch(`/v1/instances/${second.instance_id}`, { method: "DELETE" });
    assert.equal(byId.status, 200);
    assert.equal((await byId.json()).deleted, "twin2");
    assert.equal((await t.service.store.find(first.instance_id))?.name, "twin1");
    assert.equal(await t.service.store.find(second.instance_id), null);
    assert.equal((await t.service.store.getByUuid(FIRST.uuid))?.name, "twin1");
  } finally {
    await t.close();
  }
});

Deno.test("an upload whose instance-id another domain holds is refused with 409 and changes no record or index", async () => {
  const t = await startTestService();
  try {
    // An imported record that kept an id equal to what SECOND would now get.
    const taken = "i-6f1a3c2e5b7d4e8f9a00000000000002";
    await t.service.store.upsert({
      uuid: FIRST.uuid,
      name: FIRST.name,
      mac: FIRST.mac,
      vcpus: 1,
      memoryMiB: 512,
      metadata: {},
      tags: {},
    }, { instanceId: taken });
    const before = await snapshot(t.service.store.backend);
    const response = await t.upload(
      domainXml(SECOND),
    );
    assert.equal(response.status, 409);
    assert.match(
      await response.text(),
      /instance-id i-6f1a3c2e5b7d4e8f9a00000000000002 of "twin2" already belongs to instance "twin1"/,
    );
    assert.deepEqual(await snapshot(t.service.store.backend), before);
    assert.equal((await t.service.store.find(taken))?.uuid, FIRST.uuid);
  } finally {
    await t.close();
  }
});

Deno.test("stored instance-ids keep working: 17-digit ones and md_server's i-<address> survive re-upload and find by id", async () => {
  const t = await startTestService();
  try {
    const legacy = "i-6f1a3c2e5b7d4e8f9";
    const imported = "i-127.77.0.50";
    for (const [domain, instanceId] of [[FIRST, legacy], [SECOND, imported]] as const) {
      await t.service.store.upsert({ ...domain, vcpus: 1, memoryMiB: 512, metadata: {}, tags: {} }, { instanceId });
    }
    const first = await t.register(FIRST);
    const second = await t.register(SECOND);
    assert.equal(first.instance_id, legacy);
    assert.equal(second.instance_id, imported);
    assert.equal(await (await t.guestFetch(first.ipv4, "/latest/meta-data/instance-id")).text(), legacy);
    const byId = await t.adminFetch(`/v1/instances/${imported}`, { method: "DELETE" });
    assert.equal((await byId.json()).deleted, "twin2");
    assert.equal((await t.service.store.find(legacy))?.name, "twin1");
  } finally {
    await t.close();
  }
});

async function snapshot(backend: KeyValueBackend): Promise<[string, unknown][]> {
  const entries: [string, unknown][] = [];
  for await (const entry of backend.list({ prefix: [] })) {
    if (entry.key[0] === "access") continue;
    entries.push([JSON.stringify(entry.key), entry.value]);
  }
  return entries;
}
