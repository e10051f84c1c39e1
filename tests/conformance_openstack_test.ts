/**
 * The OpenStack metadata API: Debian's cloud-init DataSourceOpenStack reads
 * mdserver as a guest bound to its address, and the API keeps Nova's rules
 * (versions, listings, 404 for what does not exist).
 */
import assert from "node:assert/strict";
import { startTestService, type TestDomain, type TestService } from "./_harness.ts";
import { withBootEvents } from "../src/user_data/mod.ts";
import { cloudInitClients, runDriver } from "./_cloudinit.ts";

const NETWORK = { address: "127.102.0.0", prefix: 16, gateway: "127.102.0.1" };
const WEB = {
  name: "web01",
  uuid: "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
  mac: "52:54:00:20:20:01",
  metadata: `<mdserver:instance xmlns:mdserver="https://github.com/sjjf/md_server">
      <mdserver:role>web</mdserver:role>
      <mdserver:tags><mdserver:tag name="env">prod</mdserver:tag></mdserver:tags>
    </mdserver:instance>`,
};
const NOPE = {
  name: "nope01",
  uuid: "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
  mac: "52:54:00:20:20:02",
  metadata:
    `<mdserver:userdata_prefix xmlns:mdserver="https://github.com/sjjf/md_server">missing</mdserver:userdata_prefix>`,
};
const USER_DATA = "#cloud-config\nhostname: {{hostname}}\nruncmd:\n  - echo {{instance_id}}\n";
const VENDOR_DATA = "#cloud-config\nbootcmd:\n  - echo vendor-<%= it.name %>\n";

async function withService(body: (t: TestService) => Promise<void>) {
  const t = await startTestService({
    network: NETWORK,
    ini: "[mdserver]\nvendordata_template = userdata/vendor/vendor.yaml\n[dnsmasq]\nuse_dns = yes\n",
    userdata: { "web01.yaml": USER_DATA, "vendor/vendor.yaml": VENDOR_DATA },
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
  return { status: response.status, body: await response.text(), type: response.headers.get("content-type") };
}

for (const { client, missing } of await cloudInitClients("DataSourceOpenStack")) {
  Deno.test({
    name:
      `${client.label}: DataSourceOpenStack reads instance-id, host name, keys, user-data, vendor-data and a static address`,
    ignore: missing !== null,
    async fn() {
      await withService(async (t) => {
        const ip = await upload(t, WEB);
        const { result, stderr } = await runDriver(client, "openstack.py", [t.metadataUrl, ip, WEB.mac]);

        assert.equal(result.get_data, true, stderr);
        assert.equal(result.version, 2);
        assert.equal(result.instance_id, WEB.uuid);
        assert.equal(result.local_hostname, "web01");
        assert.equal(result.fqdn, "web01.test.internal");
        assert.equal(result.availability_zone, "testzone");
        assert.deepEqual(result.public_keys.sort(), [
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyDefault test@default",
          "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABTestKeyBackup test@backup",
        ]);
        assert.deepEqual(result.meta, { role: "web", env: "prod" });
        assert.equal(
          result.user_data,
          "#cloud-config\nhostname: web01\nruncmd:\n  - echo i-5a4b3c2d1e0f4a9b8c7d6e5f4a3b2c1d\n",
        );
        assert.equal(
          result.vendor_data,
          withBootEvents("#cloud-config\nbootcmd:\n  - echo vendor-web01\n", `${t.metadataUrl}/boot-events`),
        );
        assert.equal(result.vendor_data2, null);
        assert.equal(result.ec2_instance_id, "i-5a4b3c2d1e0f4a9b8c7d6e5f4a3b2c1d");
        assert.deepEqual(result.network_config, {
          version: 1,
          config: [
            {
              type: "physical",
              mac_address: WEB.mac,
              name: "ens3",
              subnets: [{
                type: "static",
                address: ip,
                netmask: "255.255.0.0",
                routes: [{ network: "0.0.0.0", netmask: "0.0.0.0", gateway: "127.102.0.1" }],
                ipv4: true,
              }],
            },
            { type: "nameserver", address: "127.102.0.1" },
          ],
        });
      });
    },
  });
}

Deno.test("/openstack lists the dated versions cloud-init knows, and each version its files", async () => {
  await withService(async (t) => {
    const ip = await upload(t, WEB);
    const versions = await get(t, ip, "/openstack");
    assert.equal(versions.status, 200);
    assert.equal(versions.body.split("\n").at(-1), "latest");
    assert.ok(versions.body.split("\n").includes("2018-08-27"));
    assert.deepEqual((await get(t, ip, "/openstack/")).body, versions.body);
    const files = "meta_data.json\nnetwork_data.json\nuser_data\nvendor_data.json\nvendor_data2.json";
    for (const version of ["latest", "2018-08-27", "2012-08-10"]) {
      assert.deepEqual((await get(t, ip, `/openstack/${version}/`)).body, files, version);
      const meta = await get(t, ip, `/openstack/${version}/meta_data.json`);
      assert.equal(meta.status, 200);
      assert.equal(meta.type, "application/json");
      assert.equal(JSON.parse(meta.body).uuid, WEB.uuid);
    }
  });
});

Deno.test("what does not exist in the OpenStack API is a 404, never an empty 200", async () => {
  await withService(async (t) => {
    const web = await upload(t, WEB);
    const nope = await upload(t, NOPE);
    for (
      const path of [
        "/openstack/2009-04-04/meta_data.json",
        "/openstack/2009-04-04/password",
        "/openstack/latest/meta_data.json/",
        "/openstack/latest/meta_data.json/uuid",
        "/openstack/latest/user-data",
      ]
    ) {
      assert.equal((await get(t, web, path)).status, 404, path);
    }
    // But the password route with nothing to give is Nova's empty 200: cloudbase-init reads a 404 as an error.
    assert.deepEqual(await get(t, web, "/openstack/latest/password"), {
      status: 200,
      body: "",
      type: "text/plain; charset=utf-8",
    });
    // A domain whose userdata_prefix matches no template has no user_data, and the listing says so.
    assert.equal((await get(t, nope, "/openstack/latest/user_data")).status, 404);
    assert.doesNotMatch((await get(t, nope, "/openstack/latest/")).body, /user_data/);
    assert.equal((await get(t, nope, "/openstack/latest/meta_data.json")).status, 200);
    // A stranger gets nothing guest-specific.
    assert.equal((await get(t, "127.102.250.250", "/openstack/latest/meta_data.json")).status, 404);
  });
});

Deno.test("vendor_data.json carries the site vendor-data under cloud-init and vendor_data2.json is empty", async () => {
  await withService(async (t) => {
    const ip = await upload(t, WEB);
    assert.deepEqual(JSON.parse((await get(t, ip, "/openstack/latest/vendor_data.json")).body), {
      "cloud-init": withBootEvents("#cloud-config\nbootcmd:\n  - echo vendor-web01\n", `${t.metadataUrl}/boot-events`),
    });
    assert.deepEqual(JSON.parse((await get(t, ip, "/openstack/latest/vendor_data2.json")).body), {});
  });
});

Deno.test("without a vendor-data template and with boot events off both vendor documents are {}", async () => {
  const t = await startTestService({ network: NETWORK, ini: "[events]\nenabled = no\n" });
  try {
    const ip = await upload(t, WEB);
    assert.deepEqual(JSON.parse((await get(t, ip, "/openstack/latest/vendor_data.json")).body), {});
    assert.deepEqual(JSON.parse((await get(t, ip, "/openstack/latest/vendor_data2.json")).body), {});
    const network = JSON.parse((await get(t, ip, "/openstack/latest/network_data.json")).body);
    assert.deepEqual(network.services, []);
  } finally {
    await t.close();
  }
});
