/**
 * `[dnsmasq] manage = unit`: mdserver runs no dnsmasq and signals nothing;
 * it asks mdserver-dnsmasq-restart.path for a restart by writing one file
 * (at start and after a removal), while an upload only writes its two
 * record files, which dnsmasq reads by itself.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestService } from "./_harness.ts";

const WEB01 = { name: "web01", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", mac: "52:54:00:12:34:56" };

async function readOrNull(path: string): Promise<string | null> {
  return await Deno.readTextFile(path).catch(() => null);
}

Deno.test("manage = unit: start and removal write the restart request, an upload only its records", async () => {
  const t = await startTestService({ ini: "[dnsmasq]\nmanage = unit\n" });
  try {
    const request = t.service.dnsmasq!.paths.restartRequestFile;
    assert.equal(request, join(t.dir, "run", "dnsmasq.restart"));
    assert.equal(t.service.dnsmasq!.pid, null, "mdserver ran a dnsmasq");
    const atStart = await readOrNull(request);
    assert.match(atStart ?? "", /^\S+Z mdserver started\n$/);

    const registered = await t.register(WEB01);
    const record = await Deno.readTextFile(join(t.dir, "dnsmasq", "dhcp-hosts", WEB01.uuid));
    assert.match(record, new RegExp(`^${WEB01.mac},id:\\*,${registered.ipv4.replaceAll(".", "\\.")},web01,`));
    assert.equal(await readOrNull(request), atStart, "an upload asked for a restart");

    const removed = await t.adminFetch(`/v1/instances/${WEB01.name}`, { method: "DELETE" });
    assert.equal(removed.status, 200, await removed.text());
    let afterRemoval: string | null = atStart;
    for (let i = 0; i < 50 && afterRemoval === atStart; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      afterRemoval = await readOrNull(request);
    }
    assert.match(afterRemoval ?? "", /^\S+Z web01 removed\n$/);
    await assert.rejects(() => Deno.stat(join(t.dir, "dnsmasq", "dhcp-hosts", WEB01.uuid)), Deno.errors.NotFound);
  } finally {
    await t.close();
  }
});
