import assert from "node:assert/strict";
import type { Instance } from "../../store/instance.ts";
import { ec2DynamicTree, ec2MetadataTree, versionListing } from "./ec2.ts";
import { lookupPath, walkTree } from "./tree.ts";
import { configFromIni } from "../../_fixtures.ts";

function config(extra = "") {
  return configFromIni(
    `[mdserver]\nuserdata_dir = ud\n[public-keys]\nalice = ssh-ed25519 AAAA alice\nbob = ssh-rsa BBBB bob\n${extra}`,
  );
}

const INSTANCE: Instance = {
  uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  name: "Web_01",
  instanceId: "i-6f1a3c2e5b7d4e8f9",
  mac: "52:54:00:12:34:56",
  ipv4: "10.122.0.7",
  vcpus: 2,
  memoryMiB: 2048,
  metadata: { availability_zone: "rack-2" },
  tags: { env: "prod", "bad tag": "x" },
  location: "host1",
  state: "registered",
  createdAt: "2026-01-02T03:04:05.678Z",
  updatedAt: "2026-01-02T03:04:05.678Z",
  stoppedAt: null,
};

Deno.test("ec2MetadataTree() lists public keys as N=name and serves N/openssh-key", async () => {
  const tree = ec2MetadataTree(await config(), INSTANCE);
  assert.deepEqual(lookupPath(tree, "public-keys/"), { kind: "listing", body: "0=alice\n1=bob" });
  assert.deepEqual(lookupPath(tree, "public-keys/1/openssh-key"), { kind: "leaf", body: "ssh-rsa BBBB bob" });
  assert.deepEqual(lookupPath(tree, "public-keys/0"), { kind: "listing", body: "openssh-key" });
});

Deno.test("ec2MetadataTree() uses the DNS label, the domain and the zone metadata", async () => {
  const tree = ec2MetadataTree(await config("[dnsmasq]\ndomain = lab.example\nprefix = vm-\n"), INSTANCE);
  assert.deepEqual(lookupPath(tree, "local-hostname"), { kind: "leaf", body: "vm-web-01.lab.example" });
  assert.deepEqual(lookupPath(tree, "placement/availability-zone"), { kind: "leaf", body: "rack-2" });
  assert.deepEqual(lookupPath(tree, "instance-type"), { kind: "leaf", body: "kvm.c2m2048" });
  assert.deepEqual(lookupPath(tree, "services/domain"), { kind: "leaf", body: "lab.example" });
});

Deno.test("ec2MetadataTree() serves only tags whose names are usable paths", async () => {
  const tree = ec2MetadataTree(await config(), INSTANCE);
  assert.deepEqual(lookupPath(tree, "tags/instance/"), { kind: "listing", body: "env" });
  assert.deepEqual(lookupPath(tree, "tags/instance/env"), { kind: "leaf", body: "prod" });
});

Deno.test("ec2MetadataTree() has no leaf ending in a newline and no empty listing", async () => {
  const tree = ec2MetadataTree(await config(), INSTANCE);
  for (const [path, body] of walkTree(tree)) {
    assert.ok(!body.endsWith("\n"), path);
    assert.notEqual(body, "", path);
  }
});

Deno.test("a leaf asked for with a trailing slash, or a path below a leaf, is missing", async () => {
  const tree = ec2MetadataTree(await config(), INSTANCE);
  assert.equal(lookupPath(tree, "instance-id/").kind, "missing");
  assert.equal(lookupPath(tree, "instance-id/x").kind, "missing");
  assert.equal(lookupPath(tree, "placement").kind, "listing");
});

Deno.test("ec2DynamicTree() serves the identity document cloud-init reads", async () => {
  const found = lookupPath(ec2DynamicTree(await config(), INSTANCE), "instance-identity/document");
  assert.equal(found.kind, "leaf");
  const document = JSON.parse(found.kind === "leaf" ? found.body : "{}");
  assert.equal(document.instanceId, "i-6f1a3c2e5b7d4e8f9");
  assert.equal(document.privateIp, "10.122.0.7");
  assert.equal(document.availabilityZone, "rack-2");
  assert.equal(document.pendingTime, "2026-01-02T03:04:05Z");
});

Deno.test("versionListing() always offers the versions cloud-init probes and latest", async () => {
  const lines = versionListing(await config()).split("\n");
  for (const version of ["2009-04-04/", "2016-09-02/", "2018-09-24/", "2021-03-23/", "latest/"]) {
    assert.ok(lines.includes(version), version);
  }
});

Deno.test("versionListing() lists latest once when ec2_versions names it, as md_server's configuration does", async () => {
  const lines = versionListing(await config("[service]\nec2_versions = 2009-04-04,latest\n")).split("\n");
  assert.equal(lines.filter((line) => line === "latest/").length, 1);
  assert.equal(lines.at(-1), "latest/");
  assert.equal(new Set(lines).size, lines.length);
});
