import assert from "node:assert/strict";
import type { Instance } from "../../store/instance.ts";
import {
  isOpenstackVersion,
  openstackMetaData,
  openstackVendorData,
  openstackVendorData2,
  openstackVersionListing,
} from "./openstack.ts";
import { configFromIni } from "../../_fixtures.ts";

function config(extra = "") {
  return configFromIni(
    `[mdserver]\nuserdata_dir = ud\n[public-keys]\nalice = ssh-ed25519 AAAA alice\nbob = ssh-rsa BBBB bob\n[service]\nlocation = host1\n${extra}`,
  );
}

const INSTANCE = {
  uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  name: "Web_01",
  instanceId: "i-6f1a3c2e5b7d4e8f9",
  mac: "52:54:00:12:34:56",
  ipv4: "10.122.0.7",
  metadata: { role: "web", dsmode: "net" },
  tags: { env: "prod" },
} as unknown as Instance;

Deno.test("openstackVersionListing() lists the dated versions cloud-init knows and latest", () => {
  const versions = openstackVersionListing().split("\n");
  assert.equal(versions.at(-1), "latest");
  assert.ok(versions.includes("2018-08-27"));
  assert.ok(versions.includes("2012-08-10"));
  for (const version of versions) assert.ok(isOpenstackVersion(version), version);
  assert.equal(isOpenstackVersion("2009-04-04"), false);
  assert.equal(isOpenstackVersion("meta_data.json"), false);
});

Deno.test("openstackMetaData() carries uuid, host name, zone, keys and the domain's metadata", async () => {
  const data = openstackMetaData(await config("[dnsmasq]\ndomain = lab.example\n"), INSTANCE);
  assert.deepEqual(data, {
    uuid: INSTANCE.uuid,
    name: "Web_01",
    hostname: "web-01.lab.example",
    availability_zone: "host1",
    launch_index: 0,
    public_keys: { alice: "ssh-ed25519 AAAA alice", bob: "ssh-rsa BBBB bob" },
    keys: [
      { name: "alice", type: "ssh", data: "ssh-ed25519 AAAA alice" },
      { name: "bob", type: "ssh", data: "ssh-rsa BBBB bob" },
    ],
    meta: { role: "web", dsmode: "net", env: "prod" },
    devices: [],
  });
});

Deno.test("openstackVendorData() puts vendor-data under cloud-init, and {} when there is none", () => {
  assert.deepEqual(openstackVendorData("#cloud-config\n{}\n"), { "cloud-init": "#cloud-config\n{}\n" });
  assert.deepEqual(openstackVendorData(null), {});
  assert.deepEqual(openstackVendorData2(), {});
});
