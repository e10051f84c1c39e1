import assert from "node:assert/strict";
import { domainXml, startTestService } from "./_harness.ts";

Deno.test("an upload whose MAC is broadcast, multicast or all zero is refused with 400 and stores nothing", async () => {
  const t = await startTestService();
  try {
    const cases: [string, RegExp][] = [
      ["ff:ff:ff:ff:ff:ff", /is the broadcast address/],
      ["01:00:5e:00:00:fb", /is a multicast address/],
      ["33:33:00:00:00:01", /is a multicast address/],
      ["00:00:00:00:00:00", /is all zero/],
    ];
    let n = 0;
    for (const [mac, reason] of cases) {
      const uuid = `0000000c-0000-4000-8000-${(++n).toString(16).padStart(12, "0")}`;
      const response = await t.upload(domainXml({ name: `bad${n}`, uuid, mac }));
      assert.equal(response.status, 400, mac);
      assert.match(await response.text(), reason);
    }
    for await (const _ of t.service.store.list()) assert.fail("an instance was stored");
    // A locally administered unicast MAC (second bit set) is fine.
    const ok = await t.upload(
      domainXml({ name: "good", uuid: "0000000c-0000-4000-8000-0000000000ff", mac: "02:00:00:00:00:01" }),
    );
    assert.equal(ok.status, 201);
  } finally {
    await t.close();
  }
});
