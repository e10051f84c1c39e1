/**
 * The NoCloud documents for one instance, as pure data: `meta-data` and
 * `network-config` (YAML). User-data and vendor-data come from
 * src/metadata/documents.ts.
 *
 * @module
 */

import { stringify } from "yaml";
import type { Config } from "../../config/config.ts";
import { publicKeyLines } from "../../config/public_keys.ts";
import { hostNames } from "../../domain/mod.ts";
import type { Instance } from "../../store/instance.ts";
import { availabilityZone } from "./ec2.ts";
import { networkConfigV2, type NetworkMode } from "./network_config.ts";

/**
 * YAML as cloud-init's PyYAML reads it: YAML 1.1, where an unquoted
 * `52:54:00:12:34:56` is a base-60 number and `yes`/`on` are booleans. The
 * 1.1 writer quotes such strings; the result reads the same as YAML 1.2.
 */
function cloudInitYaml(value: unknown): string {
  return stringify(value, { version: "1.1", lineWidth: 0 });
}

/** The files NoCloud reads, in the order a seed lists them. */
export const NOCLOUD_FILES: readonly string[] = [
  "meta-data",
  "user-data",
  "vendor-data",
  "network-config",
];

/**
 * `meta-data`: the same instance-id as the EC2 API (so moving a guest
 * between the two does not look like a new instance), the host name and the
 * SSH keys as a list.
 */
export function nocloudMetaData(config: Config, instance: Instance): string {
  const names = hostNames(
    instance.name,
    config.dnsmasq.prefix,
    config.dnsmasq.domain,
  );
  const hostname = names.fqdn ?? names.base;
  const keys = publicKeyLines(config.publicKeys);
  const document: Record<string, unknown> = {
    "instance-id": instance.instanceId,
    "local-hostname": hostname,
    hostname,
    "availability-zone": availabilityZone(config, instance),
  };
  if (keys.length > 0) document["public-keys"] = keys;
  return cloudInitYaml(document);
}

/** `network-config`: network config version 2 in YAML, DHCP or static (see networkConfigV2). */
export function nocloudNetworkConfig(
  config: Config,
  instance: Instance,
  mode: NetworkMode,
): string {
  return cloudInitYaml(networkConfigV2(config, instance, mode));
}
