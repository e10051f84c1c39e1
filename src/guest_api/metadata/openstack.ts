/**
 * The OpenStack metadata API for one instance, as pure data:
 * `/openstack` (versions), `meta_data.json`, the vendor-data documents and
 * the file listing of a version. User-data and network data come from
 * src/metadata/documents.ts and src/metadata/network_config.ts.
 *
 * @module
 */

import type { Config } from "../../config/config.ts";
import { keyLines } from "../../config/public_keys.ts";
import { hostNames } from "../../domain/mod.ts";
import type { Instance } from "../../store/instance.ts";
import { availabilityZone } from "./ec2.ts";

/**
 * Dated versions served, oldest first: exactly the ones cloud-init knows
 * (`OS_VERSIONS` in cloudinit/sources/helpers/openstack.py, 22.4 to 26.x).
 * It takes the newest one it knows from our list, else `latest`.
 */
export const OPENSTACK_VERSIONS: readonly string[] = [
  "2012-08-10",
  "2013-04-04",
  "2013-10-17",
  "2015-10-15",
  "2016-06-30",
  "2016-10-06",
  "2017-02-22",
  "2018-08-27",
];

/** The files of one version, in listing order. */
export const OPENSTACK_FILES: readonly string[] = [
  "meta_data.json",
  "network_data.json",
  "user_data",
  "vendor_data.json",
  "vendor_data2.json",
];

/** Whether a path segment names an OpenStack version we answer. */
export function isOpenstackVersion(segment: string): boolean {
  return segment === "latest" || OPENSTACK_VERSIONS.includes(segment);
}

/** The body of `GET /openstack`: every version, one a line, `latest` last. */
export function openstackVersionListing(): string {
  return [...OPENSTACK_VERSIONS, "latest"].join("\n");
}

/**
 * `meta_data.json`: Nova's fields. cloud-init takes `uuid` as the
 * instance-id, `hostname` as the local host name, `public_keys` as the SSH
 * keys and `meta` (the domain's mdserver metadata and tags) as user
 * metadata; a `dsmode` there is honoured.
 */
export function openstackMetaData(
  config: Config,
  instance: Instance,
): Record<string, unknown> {
  const names = hostNames(
    instance.name,
    config.dnsmasq.prefix,
    config.dnsmasq.domain,
  );
  const publicKeys: Record<string, string> = {};
  const keys: { name: string; type: string; data: string }[] = [];
  for (const [name, key] of config.publicKeys) {
    if (keyLines(key).length === 0) continue;
    publicKeys[name] = key.trim();
    keys.push({ name, type: "ssh", data: key.trim() });
  }
  return {
    uuid: instance.uuid,
    name: instance.name,
    hostname: names.fqdn ?? names.base,
    availability_zone: availabilityZone(config, instance),
    launch_index: 0,
    public_keys: publicKeys,
    keys,
    meta: { ...instance.metadata, ...instance.tags },
    devices: [],
  };
}

/**
 * `vendor_data.json` (Nova's static vendor data): the rendered site-wide
 * vendor-data under `"cloud-init"`, or `{}` when none is configured.
 */
export function openstackVendorData(
  vendorData: string | null,
): Record<string, unknown> {
  return vendorData === null ? {} : { "cloud-init": vendorData };
}

/**
 * `vendor_data2.json` (Nova's dynamic vendor data): always `{}`. cloud-init
 * applies vendor_data.json and vendor_data2.json both, so carrying the
 * vendor-data in both would run it twice.
 */
export function openstackVendorData2(): Record<string, unknown> {
  return {};
}
