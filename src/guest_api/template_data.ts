/**
 * The data a user-data or vendor-data template sees: every variable
 * md_server offered, plus the instance, its network and the service.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { hostNames } from "../domain/mod.ts";
import type { Instance } from "../store/instance.ts";
import { formatCidr, formatIpv4, formatNetmask } from "../ipam/ipv4.ts";

/** Extra values known only at request time. */
export interface TemplateExtras {
  /** URL the guest's cloud-init phone_home should POST to, if boot tracking is on. */
  phoneHomeUrl?: string | null;
  /** Base URL of the metadata service as the guest reaches it. */
  metadataUrl?: string | null;
}

/**
 * Builds template data. md_server's names come first and win over the
 * extended ones, so its templates render as they did.
 */
export function buildTemplateData(
  config: Config,
  instance: Instance,
  extras: TemplateExtras = {},
): Record<string, unknown> {
  const names = hostNames(instance.name, config.dnsmasq.prefix, config.dnsmasq.domain);
  const publicKeys = Object.fromEntries(config.publicKeys);
  const data: Record<string, unknown> = {
    // The instance and its network.
    name: instance.name,
    uuid: instance.uuid,
    instance_id: instance.instanceId,
    mac: instance.mac,
    ipv4: instance.ipv4,
    vcpus: instance.vcpus,
    memory: instance.memoryMiB,
    metadata: { ...instance.metadata },
    tags: { ...instance.tags },
    fqdn: names.fqdn ?? names.base,
    local_hostname: names.base,
    domain: config.dnsmasq.domain,
    network: {
      name: config.dnsmasq.netName,
      cidr: formatCidr(config.dnsmasq.network),
      address: formatIpv4(config.dnsmasq.network.address),
      prefix: config.dnsmasq.network.prefix,
      netmask: formatNetmask(config.dnsmasq.network.prefix),
      gateway: config.dnsmasq.gateway,
      dns: config.dnsmasq.useDns ? config.dnsmasq.gateway : null,
    },
    service: { ...config.service },
    phone_home_url: extras.phoneHomeUrl ?? null,
    metadata_url: extras.metadataUrl ?? null,
  };
  // md_server: [template-data] keys and _config_items_, then keys and password.
  Object.assign(data, config.templateData);
  for (const [name, key] of config.publicKeys) data[`public_key_${name}`] = key;
  data.public_keys = publicKeys;
  if (config.mdserver.password !== null) data.mdserver_password = config.mdserver.password;
  // The instance's own password (`mdserver password`), as a hash for chpasswd
  // (type: hash) or users' hashed_passwd: kept for good, unlike the clear text.
  data.mdserver_password_hash = instance.password?.hash ?? null;
  data.hostname = names.base;
  return data;
}
