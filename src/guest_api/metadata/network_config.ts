/**
 * The guest's network configuration, as pure data: OpenStack's
 * `network_data.json` and cloud-init's network config version 2 (NoCloud's
 * `network-config`). Both describe the one interface on the managed
 * network, found by its MAC, never by a name the guest may not have.
 *
 * @module
 */

import type { Config } from "../../config/config.ts";
import type { Instance } from "../../store/instance.ts";
import { formatNetmask } from "../../ipam/ipv4.ts";

/** The static address of an instance on the managed network. */
export interface StaticAddress {
  /** MAC of the interface. */
  mac: string;
  /** The instance's address. */
  address: string;
  /** The network's prefix length. */
  prefix: number;
  /** The network's mask, dotted-quad. */
  netmask: string;
  /** The default gateway. */
  gateway: string;
  /** Name servers: the gateway (where dnsmasq answers) when `use_dns` is on, else none. */
  nameservers: string[];
  /** Search domains: the configured `domain`, if any. */
  search: string[];
}

/** The instance's address, mask, gateway and name servers. */
export function staticAddress(
  config: Config,
  instance: Instance,
): StaticAddress {
  const { dnsmasq } = config;
  return {
    mac: instance.mac,
    address: instance.ipv4,
    prefix: dnsmasq.network.prefix,
    netmask: formatNetmask(dnsmasq.network.prefix),
    gateway: dnsmasq.gateway,
    nameservers: dnsmasq.useDns ? [dnsmasq.gateway] : [],
    search: dnsmasq.useDns && dnsmasq.domain ? [dnsmasq.domain] : [],
  };
}

/**
 * OpenStack's `network_data.json`: one physical link by MAC, one static
 * IPv4 network with a default route via the gateway, and the DNS service
 * when `use_dns` is on. The link has no `name`, so cloud-init keeps the
 * guest's own interface name and finds it by MAC.
 */
export function openstackNetworkData(
  config: Config,
  instance: Instance,
): Record<string, unknown> {
  const net = staticAddress(config, instance);
  const linkId = "interface0";
  return {
    links: [{
      id: linkId,
      type: "phy",
      ethernet_mac_address: net.mac,
      vif_id: instance.uuid,
    }],
    networks: [{
      id: "network0",
      type: "ipv4",
      link: linkId,
      ip_address: net.address,
      netmask: net.netmask,
      routes: [{
        network: "0.0.0.0",
        netmask: "0.0.0.0",
        gateway: net.gateway,
      }],
      network_id: config.dnsmasq.netName,
    }],
    services: net.nameservers.map((address) => ({ type: "dns", address })),
  };
}

/** How NoCloud's `network-config` configures the interface. */
export type NetworkMode = "dhcp" | "static";

/**
 * cloud-init network config version 2 for the managed interface, matched
 * by MAC without `set-name` (the guest keeps its interface name). "dhcp"
 * asks dnsmasq, which hands out the same reserved address; "static" writes
 * the address, the default route and the name servers.
 */
export function networkConfigV2(
  config: Config,
  instance: Instance,
  mode: NetworkMode,
): Record<string, unknown> {
  const net = staticAddress(config, instance);
  const ethernet: Record<string, unknown> = { match: { macaddress: net.mac } };
  if (mode === "dhcp") {
    ethernet.dhcp4 = true;
  } else {
    ethernet.dhcp4 = false;
    ethernet.addresses = [`${net.address}/${net.prefix}`];
    // "0.0.0.0/0" rather than "default": cloud-init 22.4 does not know the latter.
    ethernet.routes = [{ to: "0.0.0.0/0", via: net.gateway }];
    if (net.nameservers.length > 0) {
      ethernet.nameservers = net.search.length > 0
        ? { addresses: net.nameservers, search: net.search }
        : { addresses: net.nameservers };
    }
  }
  return { version: 2, ethernets: { id0: ethernet } };
}
