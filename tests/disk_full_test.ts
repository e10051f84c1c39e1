import assert from "node:assert/strict";
import { join } from "node:path";
import { domainXml, startTestService, type TestService } from "./_harness.ts";
import { missingRequirement, requirementTest } from "./_netns.ts";
import { mountSmallTmpfs } from "./_tmpfs.ts";

// A full disk is a small tmpfs, which only root can mount.
const missing = await missingRequirement({ root: true, tools: ["mount", "umount"] });

function domain(n: number, name = `full${n}`) {
  const hex = n.toString(16).padStart(12, "0");
  return { name, uuid: `0000000f-0000-4000-8000-${hex}`, mac: `52:54:00:0f:${hex.slice(8, 10)}:${hex.slice(10, 12)}` };
}

async function recordFiles(t: TestService): Promise<string[]> {
  const names: string[] = [];
  for (const sub of ["dhcp-hosts", "hosts"]) {
    for await (const entry of Deno.readDir(join(t.config.dnsmasq.baseDir, sub))) names.push(`${sub}/${entry.name}`);
  }
  return names.sort();
}

async function instances(t: TestService) {
  const all = [];
  for await (const instance of t.service.store.list()) all.push(instance);
  return all;
}

requirementTest(
  "uploads refused because dnsmasq's records cannot be written (disk full) are not kept: 507, no record, no file",
  missing,
  async () => {
    const disk = await mountSmallTmpfs(64);
    const t = await startTestService({ ini: `[dnsmasq]\nbase_dir = ${disk.path}/dnsmasq\n` });
    try {
      const kept = await t.register(domain(1));
      const filesBefore = await recordFiles(t);
      await disk.fill();
      for (let n = 2; n <= 21; n++) {
        const response = await t.upload(domainXml(domain(n)));
        assert.equal(response.status, 507, `upload ${n}`);
        assert.match(
          await response.text(),
          /^cannot write the dnsmasq records of "full\d+": no space left under .*; the upload was not stored\n$/,
        );
      }
      // A known domain whose records would change (a new name) is refused too and keeps its old record.
      const renamed = await t.upload(domainXml(domain(1, "renamed1")));
      assert.equal(renamed.status, 507);
      assert.deepEqual((await instances(t)).map((instance) => [instance.name, instance.ipv4]), [["full1", kept.ipv4]]);
      assert.equal(await t.service.store.allocatedCount(), 1);
      assert.equal(await t.service.store.find(domain(2).mac), null);
      assert.deepEqual(await recordFiles(t), filesBefore);
      assert.equal(
        (await (await t.guestFetch(kept.ipv4, "/latest/meta-data/local-hostname")).text()).split(".")[0],
        "full1",
      );

      // Space returns: the same upload is accepted and its records are there at once.
      await disk.free();
      const later = await t.register(domain(2));
      assert.equal(later.created, true);
      assert.equal((await recordFiles(t)).length, 4);
      assert.match(
        await Deno.readTextFile(join(t.config.dnsmasq.baseDir, "dhcp-hosts", domain(2).uuid)),
        /52:54:00:0f:00:02/,
      );
    } finally {
      await t.close();
      await disk.close();
    }
  },
);

requirementTest(
  "a full KV store answers 507 with a reason, and the upload is accepted once space returns",
  missing,
  async () => {
    const disk = await mountSmallTmpfs(512);
    const t = await startTestService({ kvFile: true, ini: `[mdserver]\nkv_file = ${disk.path}/mdserver.kv\n` });
    try {
      await t.register(domain(1));
      await disk.fill();
      let refused = 0;
      // SQLite may still place a small write in pages it holds: keep uploading until it is refused (bounded).
      for (let n = 2; n <= 200 && refused === 0; n++) {
        const response = await t.upload(domainXml({ ...domain(n), name: `full-${"x".repeat(50)}-${n}` }));
        const body = await response.text();
        if (response.status === 507) {
          assert.match(
            body,
            /^the instance store is full \(no space left on its disk\); free space where kv_file is\n$/,
          );
          refused++;
        } else {
          assert.equal(response.status, 201, body);
        }
      }
      assert.equal(refused, 1);
      await disk.free();
      assert.equal((await t.register(domain(999))).created, true);
    } finally {
      await t.close();
      await disk.close();
    }
  },
);
