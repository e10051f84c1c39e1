/**
 * `mdserver register DOMAIN…` against the running service: a defined domain
 * gets its address, instance-id and DHCP reservation before its first
 * start, without a boot beginning, so that `mdserver password` can be set
 * for the first boot (cloud-init sets passwords once per instance); the
 * hook's upload at the start then opens boot #1 and its config drive
 * delivers the password. A name virsh does not know registers nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { domainXml, startTestService, writeClientConfig } from "./_harness.ts";
import { runCtl } from "../src/cli/ctl.ts";
import { extractSeedImage, seedImageMissing } from "./_seed_image.ts";
import { configDriveDiskXml } from "../src/seed/mod.ts";

const missing = await seedImageMissing();
const NETWORK = { address: "127.107.0.0", prefix: 16, gateway: "127.107.0.1" };
const WEB = { name: "web01", uuid: "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d", mac: "52:54:00:61:61:01" };
const DB = { name: "db01", uuid: "4b5c6d7e-8f9a-4b1c-8d2e-3f4a5b6c7d8e", mac: "52:54:00:61:61:02" };

Deno.test({
  name: "register: a domain known before its first start, no boot begun, its password delivered by the start",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK, configDrives: true });
    try {
      const web = { ...WEB, devices: configDriveDiskXml(t.config, WEB.uuid) };
      // What `virsh dumpxml` prints for each defined domain.
      const defined = new Map([["web01", domainXml(web)], ["db01", domainXml(DB)]]);
      const asked: string[] = [];
      const lines: string[] = [];
      const deps = {
        configFile: await writeClientConfig(t),
        print: (line: string) => lines.push(...line.split("\n")),
        domainXml: (domain: string, connect: string | null) => {
          asked.push(`${connect ?? "-"} ${domain}`);
          const xml = defined.get(domain);
          if (xml === undefined) throw new Error(`virsh dumpxml ${domain} failed: failed to get domain '${domain}'`);
          return Promise.resolve(xml);
        },
      };

      // An unknown name among them: nothing is registered.
      await assert.rejects(
        runCtl({ args: ["register", "web01", "nope"], options: new Map() }, deps),
        /virsh dumpxml nope failed/,
      );
      assert.equal((await t.adminFetch("/v1/instances/web01")).status, 404);

      const code = await runCtl(
        { args: ["register", "web01", "db01"], options: new Map([["connect", "qemu:///system"]]) },
        deps,
      );
      assert.equal(code, 0);
      assert.deepEqual(asked.slice(-2), ["qemu:///system web01", "qemu:///system db01"]);
      assert.match(lines[0]!, /^NAME\s+IPV4\s+INSTANCE-ID\s+UUID\s+CONFIG-DRIVE$/);
      const [, webLine, dbLine] = lines;
      assert.match(webLine!, new RegExp(`^web01\\s+127\\.107\\.\\d+\\.\\d+\\s+i-[0-9a-f]+\\s+${WEB.uuid}\\s+built$`));
      assert.match(dbLine!, new RegExp(`^db01\\s+127\\.107\\.\\d+\\.\\d+\\s+i-[0-9a-f]+\\s+${DB.uuid}\\s+none$`));
      const shown = await (await t.adminFetch("/v1/instances/web01")).json();
      assert.equal(shown.boot, null, "registering is not a start: no boot begins");
      assert.equal(shown.boot_state, "registered");
      const reservation = await Deno.readTextFile(join(t.config.dnsmasq.baseDir, "dhcp-hosts", WEB.uuid));
      assert.match(reservation, new RegExp(`^${WEB.mac},id:\\*,${shown.ipv4.replaceAll(".", "\\.")},`));

      // The password, set before the first boot.
      lines.length = 0;
      assert.equal(await runCtl({ args: ["password", "web01"], options: new Map() }, deps), 0);
      const password = lines[0]!;
      assert.equal((await (await t.adminFetch("/v1/instances/web01")).json()).password.pending, true);

      // The start (the hook's upload): boot #1, the same address, and the image it opens has the password.
      const started = await t.adminFetch("/v1/instances", {
        method: "POST",
        body: domainXml(web),
        headers: { "content-type": "application/xml" },
      });
      const answer = await started.json();
      assert.equal(answer.ipv4, shown.ipv4);
      const after = await (await t.adminFetch("/v1/instances/web01")).json();
      assert.equal(after.boot.seq, 1);
      assert.equal(after.boot.cause, "start");
      assert.equal(after.password.pending, false, "the start's image delivered it");
      const files = await extractSeedImage(join(t.config.configDrive.dir, `${WEB.uuid}.iso`), join(t.dir, "x"));
      assert.equal(files.get("cloudstack/password/vm_password.txt"), password);

      // Registering a running domain again changes nothing of its boot.
      await runCtl({ args: ["register", "web01"], options: new Map() }, deps);
      const again = await (await t.adminFetch("/v1/instances/web01")).json();
      assert.equal(again.boot.seq, 1);
      assert.equal(again.boots.length, 1);

      // The query is checked.
      const bad = await t.adminFetch("/v1/instances?start=yes", { method: "POST", body: domainXml(DB) });
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /start must be "no"/);
    } finally {
      await t.close();
    }
  },
});
