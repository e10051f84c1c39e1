import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { loadConfig } from "../../config/mod.ts";
import { DocumentTemplateError } from "../errors.ts";
import type { Instance } from "../../store/instance.ts";
import type { Logger } from "../../log/log.ts";
import { TemplateRenderer } from "../../user_data/mod.ts";
import { configDriveFiles, type DocumentDeps, nocloudFile, nocloudSeedFiles, openstackFile } from "./documents.ts";

const INSTANCE: Instance = {
  uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  name: "web01",
  instanceId: "i-6f1a3c2e5b7d4e8f9",
  mac: "52:54:00:12:34:56",
  ipv4: "10.122.0.7",
  vcpus: 1,
  memoryMiB: 512,
  metadata: {},
  tags: {},
  location: "host1",
  state: "registered",
  createdAt: "2026-01-02T03:04:05.678Z",
  updatedAt: "2026-01-02T03:04:05.678Z",
  stoppedAt: null,
};

async function withDeps(
  files: Record<string, string>,
  extra: string,
  body: (deps: DocumentDeps, errors: string[]) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "ud"));
    for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
    await Deno.writeTextFile(join(dir, "mdserver.conf"), `[mdserver]\nuserdata_dir = ud\n${extra}`);
    const config = await loadConfig(join(dir, "mdserver.conf"));
    const renderer = new TemplateRenderer({
      userdataDir: config.mdserver.userdataDir,
      suffixes: config.mdserver.userdataSuffixes,
      defaultTemplate: config.mdserver.defaultTemplate,
    });
    const errors: string[] = [];
    const log: Logger = { debug() {}, info() {}, warning() {}, error: (line) => errors.push(line) };
    await body({ config, renderer, log }, errors);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("openstackFile() has no user_data when the userdata_prefix matches nothing, and no unknown files", async () => {
  await withDeps({}, "", async (deps) => {
    const prefixed = { ...INSTANCE, metadata: { userdata_prefix: "missing" } };
    assert.equal(await openstackFile(deps, prefixed, "user_data"), null);
    assert.notEqual(await openstackFile(deps, INSTANCE, "user_data"), null);
    assert.equal(await openstackFile(deps, INSTANCE, "password"), null);
    // NoCloud needs its user-data: empty rather than missing.
    assert.deepEqual(await nocloudFile(deps, prefixed, "user-data", "dhcp"), {
      body: "",
      contentType: "text/plain; charset=utf-8",
    });
  });
});

Deno.test("a broken vendor-data template is a 500 for the guest and a logged error with the file", async () => {
  await withDeps(
    { "vendor.yaml": "#cloud-config\nx: <%= it.nope.deeper %>\n" },
    "vendordata_template = vendor.yaml\n",
    async (deps, errors) => {
      await assert.rejects(
        () => openstackFile(deps, INSTANCE, "vendor_data.json"),
        (error: unknown) => error instanceof DocumentTemplateError,
      );
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /vendor-data for web01: template .*vendor\.yaml/);
    },
  );
});

Deno.test("configDriveFiles() holds the OpenStack files and the EC2 meta-data as JSON", async () => {
  await withDeps({ "vendor.yaml": "#cloud-config\n{}\n" }, "vendordata_template = vendor.yaml\n", async (deps) => {
    const files = await configDriveFiles(deps, INSTANCE);
    assert.deepEqual([...files.keys()].sort(), [
      "cloudstack/metadata/availability-zone.txt",
      "cloudstack/metadata/cloud-identifier.txt",
      "cloudstack/metadata/instance-id.txt",
      "cloudstack/metadata/local-hostname.txt",
      "cloudstack/metadata/public-keys.txt",
      "cloudstack/metadata/service-offering.txt",
      "cloudstack/metadata/vm-id.txt",
      "cloudstack/userdata/user_data.txt",
      "ec2/latest/meta-data.json",
      "openstack/latest/meta_data.json",
      "openstack/latest/network_data.json",
      "openstack/latest/user_data",
      "openstack/latest/vendor_data.json",
      "openstack/latest/vendor_data2.json",
    ]);
    for (const [path, body] of files) {
      if (!path.startsWith("openstack/")) continue;
      const name = path.slice("openstack/latest/".length);
      assert.equal(body, (await openstackFile(deps, INSTANCE, name))!.body, path);
    }
    const ec2 = JSON.parse(files.get("ec2/latest/meta-data.json")!);
    assert.equal(ec2["instance-id"], INSTANCE.instanceId);
    assert.equal(ec2.placement["availability-zone"], deps.config.service.location);
  });
});

Deno.test("nocloudSeedFiles() is /nocloud/ with the address given statically", async () => {
  await withDeps({}, "", async (deps) => {
    const files = await nocloudSeedFiles(deps, INSTANCE);
    assert.deepEqual([...files.keys()], ["meta-data", "user-data", "vendor-data", "network-config"]);
    assert.equal(files.get("meta-data"), (await nocloudFile(deps, INSTANCE, "meta-data", "dhcp"))!.body);
    assert.equal(files.get("vendor-data"), "");
    const network = parse(files.get("network-config")!, { version: "1.1" });
    assert.deepEqual(network.ethernets.id0.addresses, ["10.122.0.7/16"]);
    assert.equal(network.ethernets.id0.dhcp4, false);
  });
});
