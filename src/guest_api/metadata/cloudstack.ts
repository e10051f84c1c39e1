/**
 * CloudStack's config drive layout for one instance, as pure data:
 * `cloudstack/metadata/*.txt`, one value a file, beside the OpenStack
 * layout on the same `config-2` image (CloudStack's ConfigDrive provider
 * writes both, so that its own guest scripts and cloud-init read one drive).
 * User-data (`cloudstack/userdata/user_data.txt`) and the password
 * (`cloudstack/password/vm_password.txt`) come from documents.ts.
 *
 * @module
 */

import type { Config } from "../../config/config.ts";
import { keyLines } from "../../config/public_keys.ts";
import { hostNames } from "../../domain/mod.ts";
import type { Instance } from "../../store/instance.ts";
import { availabilityZone, instanceType } from "./ec2.ts";

/** The folder of the metadata files. */
export const CLOUDSTACK_METADATA_DIR = "cloudstack/metadata/";

/**
 * `cloudstack/metadata/<name>.txt` → value. instance-id is the domain UUID
 * (what the OpenStack files on the same drive give as `uuid`, so every
 * reader sees one identity), vm-id the EC2-style instance-id,
 * service-offering the instance type, public-keys the keys one a line,
 * cloud-identifier `CloudStack-{mdserver-<location>}` (CloudStack's form).
 */
export function cloudstackMetadataFiles(config: Config, instance: Instance): Map<string, string> {
  const names = hostNames(instance.name, config.dnsmasq.prefix, config.dnsmasq.domain);
  const keys: string[] = [];
  for (const key of config.publicKeys.values()) keys.push(...keyLines(key));
  const values: [string, string][] = [
    ["availability-zone", availabilityZone(config, instance)],
    ["cloud-identifier", `CloudStack-{mdserver-${config.service.location}}`],
    ["instance-id", instance.uuid],
    ["local-hostname", names.base],
    ["public-keys", keys.join("\n")],
    ["service-offering", instanceType(instance)],
    ["vm-id", instance.instanceId],
  ];
  return new Map(values.map(([name, value]) => [`${CLOUDSTACK_METADATA_DIR}${name}.txt`, value]));
}
