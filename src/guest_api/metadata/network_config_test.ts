import assert from "node:assert/strict";
import type { Instance } from "../../store/instance.ts";
import { networkConfigV2, openstackNetworkData, staticAddress } from "./network_config.ts";
import { configFromIni } from "../../_fixtures.ts";

function config(dnsmasq = "") {
  return configFromIni(
    `[mdserver]\nuserdata_dir = ud\n[dnsmasq]\nnet_address = 10.122.0.0\nnet_prefix = 20\ngateway = 10.122.0.1\n${dnsmasq}`,
  );
}

const INSTANCE = {
  uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  name: "web01",
  instanceId: "i-6f1a3c2e5b7d4e8f9",
  mac: "52:54:00:12:34:56",
  ipv4: "10.122.3.7",
} as Instance;

Deno.test("staticAddress() names the gateway as name server only when use_dns is on", async () => {
  const off = staticAddress(await config(), INSTANCE);
  assert.deepEqual(off, {
    mac: "52:54:00:12:34:56",
    address: "10.122.3.7",
    prefix: 20,
    netmask: "255.255.240.0",
    gateway: "10.122.0.1",
    nameservers: [],
    search: [],
  });
  const on = staticAddress(await config("use_dns = yes\ndomain = lab.example\n"), INSTANCE);
  assert.deepEqual(on.nameservers, ["10.122.0.1"]);
  assert.deepEqual(on.search, ["lab.example"]);
});

Deno.test("openstackNetworkData() gives the address statically on the link with the guest's MAC", async () => {
  const data = openstackNetworkData(await config("use_dns = yes\n"), INSTANCE);
  assert.deepEqual(data, {
    links: [{
      id: "interface0",
      type: "phy",
      ethernet_mac_address: "52:54:00:12:34:56",
      vif_id: INSTANCE.uuid,
    }],
    networks: [{
      id: "network0",
      type: "ipv4",
      link: "interface0",
      ip_address: "10.122.3.7",
      netmask: "255.255.240.0",
      routes: [{ network: "0.0.0.0", netmask: "0.0.0.0", gateway: "10.122.0.1" }],
      network_id: "mds",
    }],
    services: [{ type: "dns", address: "10.122.0.1" }],
  });
  assert.deepEqual(openstackNetworkData(await config(), INSTANCE).services, []);
});

Deno.test("networkConfigV2() matches the interface by MAC and never renames it", async () => {
  const cfg = await config("use_dns = yes\ndomain = lab.example\n");
  assert.deepEqual(networkConfigV2(cfg, INSTANCE, "dhcp"), {
    version: 2,
    ethernets: { id0: { match: { macaddress: "52:54:00:12:34:56" }, dhcp4: true } },
  });
  assert.deepEqual(networkConfigV2(cfg, INSTANCE, "static"), {
    version: 2,
    ethernets: {
      id0: {
        match: { macaddress: "52:54:00:12:34:56" },
        dhcp4: false,
        addresses: ["10.122.3.7/20"],
        routes: [{ to: "0.0.0.0/0", via: "10.122.0.1" }],
        nameservers: { addresses: ["10.122.0.1"], search: ["lab.example"] },
      },
    },
  });
});
