import assert from "node:assert/strict";
import { importMdServerEntries, parseMdServerDatabase } from "./md_server_import.ts";
import { testPool } from "../_fixtures.ts";
import { InstanceStore } from "../store/store.ts";

const ENTRY_A = {
  location: "hv1",
  domain_name: "test1",
  domain_uuid: "becb25c7-b581-4ecd-b60e-a9942ad18879",
  domain_metadata: { userdata_prefix: "testing" },
  mds_mac: "52:54:00:3A:CF:41",
  mds_ipv4: "10.122.3.7",
  mds_ipv6: null,
  first_seen: 1594546085.2,
  last_update: 1594546085.2,
};
const ENTRY_B = {
  ...ENTRY_A,
  domain_name: "test2",
  domain_uuid: "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f",
  mds_mac: "52:54:00:00:00:02",
  mds_ipv4: "10.122.0.9",
  domain_metadata: {},
};

async function withStore(body: (store: InstanceStore) => Promise<void>) {
  const kv = await Deno.openKv(":memory:");
  try {
    const pool = testPool("10.122.0.0", 16);
    await body(new InstanceStore(kv, { pool, location: "here" }));
  } finally {
    kv.close();
  }
}

Deno.test("parseMdServerDatabase() reads both md_server formats", () => {
  const list = parseMdServerDatabase(JSON.stringify([ENTRY_A]));
  const wrapped = parseMdServerDatabase(JSON.stringify({ metadata: { locations: {} }, entries: [ENTRY_A, ENTRY_B] }));
  assert.equal(list.length, 1);
  assert.equal(wrapped.length, 2);
  assert.deepEqual(list[0], {
    domain_name: "test1",
    domain_uuid: "becb25c7-b581-4ecd-b60e-a9942ad18879",
    domain_metadata: { userdata_prefix: "testing" },
    mds_mac: "52:54:00:3a:cf:41",
    mds_ipv4: "10.122.3.7",
  });
});

Deno.test("parseMdServerDatabase() names the entry at fault", () => {
  assert.throws(() => parseMdServerDatabase("{"), SyntaxError);
  assert.throws(() => parseMdServerDatabase('{"rows": []}'), /neither of md_server's database formats/);
  assert.throws(
    () => parseMdServerDatabase(JSON.stringify([ENTRY_A, { ...ENTRY_B, mds_mac: "nope" }])),
    /entry 2: mds_mac "nope" is not a MAC address/,
  );
});

Deno.test("importMdServerEntries() keeps names, UUIDs, MACs, addresses and md_server's instance-ids", async () => {
  await withStore(async (store) => {
    const outcomes = await importMdServerEntries(store, parseMdServerDatabase(JSON.stringify([ENTRY_A, ENTRY_B])));
    assert.deepEqual(outcomes.map((o) => o.result), ["imported", "imported"]);
    const a = await store.getByIpv4("10.122.3.7");
    assert.equal(a?.name, "test1");
    assert.equal(a?.uuid, "becb25c7-b581-4ecd-b60e-a9942ad18879");
    assert.equal(a?.mac, "52:54:00:3a:cf:41");
    assert.equal(a?.instanceId, "i-10.122.3.7");
    assert.equal(a?.metadata.userdata_prefix, "testing");
    assert.equal((await store.getByIpv4("10.122.0.9"))?.name, "test2");
    // A later upload of the same domain keeps what was imported.
    const again = await store.upsert({
      uuid: ENTRY_A.domain_uuid,
      name: "test1",
      mac: "52:54:00:3a:cf:41",
      vcpus: 2,
      memoryMiB: 8192,
      metadata: {},
      tags: {},
    });
    assert.equal(again.instance.ipv4, "10.122.3.7");
    assert.equal(again.instance.instanceId, "i-10.122.3.7");
    // New uploads never take an imported address.
    const fresh = await store.upsert({
      uuid: "11111111-2222-4333-8444-555555555555",
      name: "new",
      mac: "52:54:00:99:99:99",
      vcpus: 1,
      memoryMiB: 512,
      metadata: {},
      tags: {},
    });
    assert.ok(!["10.122.3.7", "10.122.0.9"].includes(fresh.instance.ipv4));
  });
});

Deno.test("importMdServerEntries() reports an address already held and imports the rest", async () => {
  await withStore(async (store) => {
    await importMdServerEntries(store, parseMdServerDatabase(JSON.stringify([ENTRY_A])));
    const clash = { ...ENTRY_B, mds_ipv4: "10.122.3.7" };
    const outcomes = await importMdServerEntries(store, parseMdServerDatabase(JSON.stringify([clash])));
    assert.equal(outcomes[0]?.result, "failed");
    assert.match(outcomes[0]?.reason ?? "", /already belongs to another instance/);
    assert.equal(await store.getByName("test2"), null);
  });
});
