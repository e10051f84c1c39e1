import assert from "node:assert/strict";
import { parse } from "yaml";
import type { Instance } from "../../store/instance.ts";
import { nocloudMetaData, nocloudNetworkConfig } from "./nocloud.ts";
import { configFromIni } from "../../_fixtures.ts";

function config(extra = "") {
  return configFromIni(`[mdserver]\nuserdata_dir = ud\n[service]\nlocation = host1\n${extra}`);
}

const INSTANCE = {
  uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  name: "web01",
  instanceId: "i-6f1a3c2e5b7d4e8f9",
  mac: "52:54:00:12:34:56",
  ipv4: "10.122.0.7",
  metadata: {},
  tags: {},
} as unknown as Instance;

Deno.test("nocloudMetaData() is YAML with the EC2 instance-id, the host name and every key line", async () => {
  const keys = "[public-keys]\nalice = ssh-ed25519 AAAA alice\nbob = ssh-rsa BBBB bob\n";
  const text = nocloudMetaData(await config(`${keys}[dnsmasq]\ndomain = lab.example\n`), INSTANCE);
  assert.deepEqual(parse(text), {
    "instance-id": "i-6f1a3c2e5b7d4e8f9",
    "local-hostname": "web01.lab.example",
    hostname: "web01.lab.example",
    "availability-zone": "host1",
    "public-keys": ["ssh-ed25519 AAAA alice", "ssh-rsa BBBB bob"],
  });
});

Deno.test("nocloudMetaData() leaves public-keys out when no key is configured", async () => {
  const parsed = parse(nocloudMetaData(await config(), INSTANCE));
  assert.equal("public-keys" in parsed, false);
  assert.equal(parsed["local-hostname"], "web01");
});

Deno.test("nocloudNetworkConfig() is network config version 2 in YAML", async () => {
  const parsed = parse(nocloudNetworkConfig(await config(), INSTANCE, "dhcp"));
  assert.deepEqual(parsed, { version: 2, ethernets: { id0: { match: { macaddress: INSTANCE.mac }, dhcp4: true } } });
});

Deno.test("nocloud documents read the same as YAML 1.1 (PyYAML): MACs and yes/no words stay strings", async () => {
  const digits = { ...INSTANCE, name: "yes", mac: "52:54:00:12:34:56" } as Instance;
  const cfg = await config();
  const meta = nocloudMetaData(cfg, digits);
  assert.equal(parse(meta, { version: "1.1" })["local-hostname"], "yes");
  assert.deepEqual(parse(meta, { version: "1.1" }), parse(meta));
  const network = nocloudNetworkConfig(cfg, digits, "static");
  assert.equal(parse(network, { version: "1.1" }).ethernets.id0.match.macaddress, "52:54:00:12:34:56");
  assert.deepEqual(parse(network, { version: "1.1" }), parse(network));
});
