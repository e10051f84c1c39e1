/**
 * NoCloud over HTTP: Debian's cloud-init reads `/nocloud/` as a guest
 * bound to its address, both through `util.read_seeded` and through
 * DataSourceNoCloudNet found by the SMBIOS serial `main.ts smbios` prints.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { nocloudSerial, smbiosSnippet } from "../src/seed/smbios.ts";
import { startTestService, type TestDomain, type TestService } from "./_harness.ts";
import { withBootEvents } from "../src/user_data/mod.ts";
import { cloudInitClients, runDriver } from "./_cloudinit.ts";

const NETWORK = { address: "127.103.0.0", prefix: 16, gateway: "127.103.0.1" };
const WEB = { name: "web01", uuid: "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901", mac: "52:54:00:30:30:01" };
const NOPE = {
  name: "nope01",
  uuid: "8a9b0c1d-2e3f-4051-8627-38495a6b7c8d",
  mac: "52:54:00:30:30:02",
  metadata:
    `<mdserver:userdata_prefix xmlns:mdserver="https://github.com/sjjf/md_server">missing</mdserver:userdata_prefix>`,
};
const KEYS = [
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyDefault test@default",
  "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABTestKeyBackup test@backup",
];

async function withService(body: (t: TestService) => Promise<void>, vendor = true) {
  const t = await startTestService({
    network: NETWORK,
    ini: vendor ? "[mdserver]\nvendordata_template = userdata/vendor/vendor.yaml\n" : "[events]\nenabled = no\n",
    userdata: {
      "web01.yaml": "#cloud-config\nhostname: {{hostname}}\n",
      "vendor/vendor.yaml": "#cloud-config\nbootcmd:\n  - echo vendor-<%= it.name %>\n",
    },
  });
  try {
    await body(t);
  } finally {
    await t.close();
  }
}

async function upload(t: TestService, domain: TestDomain): Promise<string> {
  return (await t.register(domain)).ipv4;
}

async function get(t: TestService, ip: string, path: string) {
  const response = await t.guestFetch(ip, path);
  return { status: response.status, body: await response.text() };
}

for (const { client, missing } of await cloudInitClients("DataSourceNoCloud")) {
  Deno.test({
    name: `${client.label} reads /nocloud/ with read_seeded and as DataSourceNoCloudNet found by the SMBIOS serial`,
    ignore: missing !== null,
    async fn() {
      await withService(async (t) => {
        const ip = await upload(t, WEB);
        // The serial `main.ts smbios` prints for this listener.
        const config = { ...t.config, mdserver: { ...t.config.mdserver, port: t.service.metadataPort } };
        const serial = nocloudSerial(config);
        assert.equal(serial, `ds=nocloud;s=${t.metadataUrl}/nocloud/;dsmode=net`);
        assert.ok(smbiosSnippet(config, { datasource: "nocloud" }).includes(`<entry name='serial'>${serial}</entry>`));

        const { result, stderr } = await runDriver(client, "nocloud.py", [`${t.metadataUrl}/nocloud/`, serial, ip]);

        assert.deepEqual(result.seeded_meta_data, {
          "instance-id": "i-2b3c4d5e6f70418293a4b5c6d7e8f901",
          "local-hostname": "web01.test.internal",
          hostname: "web01.test.internal",
          "availability-zone": "testzone",
          "public-keys": KEYS,
        });
        assert.equal(result.seeded_user_data, "#cloud-config\nhostname: web01\n");
        // The site's vendor-data with the boot-events hook joined in.
        const vendor = withBootEvents(
          "#cloud-config\nbootcmd:\n  - echo vendor-web01\n",
          `${t.metadataUrl}/boot-events`,
        );
        assert.equal(result.seeded_vendor_data, vendor);

        assert.equal(result.get_data, true, stderr);
        assert.equal(result.dsmode, "net");
        assert.equal(result.seed, `dmi,${t.metadataUrl}/nocloud/`);
        assert.equal(result.instance_id, "i-2b3c4d5e6f70418293a4b5c6d7e8f901");
        assert.equal(result.local_hostname, "web01");
        assert.equal(result.fqdn, "web01.test.internal");
        assert.deepEqual(result.public_keys, KEYS);
        assert.equal(result.user_data, "#cloud-config\nhostname: web01\n");
        assert.equal(result.vendor_data, vendor);
        // 22.4 asks only for the other three files; 25.x reads network-config first and uses it.
        const network = client.id === "system" ? null : parse((await get(t, ip, "/nocloud/network-config")).body);
        assert.deepEqual(result.seeded_network_config, network);
        assert.deepEqual(result.network_config, network);
      });
    },
  });
}

Deno.test("/nocloud/network-config asks for DHCP on the interface with the guest's MAC", async () => {
  await withService(async (t) => {
    const ip = await upload(t, WEB);
    const answer = await get(t, ip, "/nocloud/network-config");
    assert.equal(answer.status, 200);
    assert.deepEqual(parse(answer.body), {
      version: 2,
      ethernets: { id0: { match: { macaddress: WEB.mac }, dhcp4: true } },
    });
  });
});

Deno.test("/nocloud/ answers user-data and vendor-data with an empty 200 when there is none (boot events off)", async () => {
  await withService(async (t) => {
    const nope = await upload(t, NOPE);
    assert.deepEqual(await get(t, nope, "/nocloud/user-data"), { status: 200, body: "" });
    assert.deepEqual(await get(t, nope, "/nocloud/vendor-data"), { status: 200, body: "" });
    assert.equal((await get(t, nope, "/nocloud/meta-data")).status, 200);
  }, false);
});

Deno.test("/nocloud/ has only its four files, and nothing for strangers", async () => {
  await withService(async (t) => {
    const ip = await upload(t, WEB);
    assert.deepEqual(await get(t, ip, "/nocloud/"), {
      status: 200,
      body: "meta-data\nuser-data\nvendor-data\nnetwork-config",
    });
    for (const path of ["/nocloud/meta-data/", "/nocloud/user_data", "/nocloud/x/meta-data"]) {
      assert.equal((await get(t, ip, path)).status, 404, path);
    }
    assert.equal((await get(t, "127.103.250.250", "/nocloud/meta-data")).status, 404);
  });
});
