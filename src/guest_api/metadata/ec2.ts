/**
 * The EC2 metadata API for one instance, as pure data: the `meta-data/`
 * tree, the `dynamic/` tree and the versions served.
 *
 * @module
 */

import type { Config } from "../../config/config.ts";
import { hostNames } from "../../domain/mod.ts";
import type { Instance } from "../../store/instance.ts";
import { formatCidr } from "../../ipam/ipv4.ts";
import { directory, type TreeDirectory } from "./tree.ts";

/** The dated versions cloud-init probes, newest first, served whatever the configuration says. */
export const PROBED_EC2_VERSIONS = ["2021-03-23", "2018-09-24", "2016-09-02", "2009-04-04"];

/** Whether a first path segment names an EC2 API version we answer. */
export function isEc2Version(segment: string, config: Config): boolean {
  return segment === "latest" || segment === "1.0" || /^\d{4}-\d{2}-\d{2}$/.test(segment) ||
    config.service.ec2Versions.includes(segment);
}

/** The listing of `/`: every version served, one a line. */
export function versionListing(config: Config): string {
  // md_server's own configuration lists "latest" among ec2_versions: once, last.
  const versions = new Set([...config.service.ec2Versions, ...PROBED_EC2_VERSIONS]);
  versions.delete("latest");
  return [...[...versions].sort(), "latest"].map((version) => `${version}/`).join("\n");
}

/** The availability zone of an instance: its `availability_zone` metadata, else the service location. */
export function availabilityZone(config: Config, instance: Instance): string {
  return instance.metadata.availability_zone ?? config.service.location;
}

/** The instance type: `instance_type` metadata, else one made from vCPUs and memory. */
export function instanceType(instance: Instance): string {
  return instance.metadata.instance_type ??
    `kvm.c${instance.vcpus ?? 1}m${instance.memoryMiB ?? 0}`;
}

/** A stable 17-hex-digit suffix for EC2-style ids derived from the UUID. */
function hexId(instance: Instance): string {
  return instance.instanceId.slice(2);
}

/** The `meta-data/` tree of an instance. */
export function ec2MetadataTree(config: Config, instance: Instance): TreeDirectory {
  const names = hostNames(instance.name, config.dnsmasq.prefix, config.dnsmasq.domain);
  const hostname = names.fqdn ?? names.base;
  const cidr = formatCidr(config.dnsmasq.network);
  const keyNames = [...config.publicKeys.keys()];
  const publicKeys = directory(
    keyNames.map((name, index) => [
      String(index),
      directory([["openssh-key", config.publicKeys.get(name)!]]),
    ]),
    keyNames.map((name, index) => `${index}=${name}`),
  );
  const macDirectory = directory([
    ["device-number", "0"],
    ["interface-id", `eni-${hexId(instance)}`],
    ["local-hostname", hostname],
    ["local-ipv4s", instance.ipv4],
    ["mac", instance.mac],
    ["owner-id", "000000000000"],
    ["security-group-ids", "sg-default"],
    ["security-groups", "default"],
    ["subnet-id", `subnet-${config.dnsmasq.netName}`],
    ["subnet-ipv4-cidr-block", cidr],
    ["vpc-id", `vpc-${config.dnsmasq.netName}`],
    ["vpc-ipv4-cidr-block", cidr],
    ["vpc-ipv4-cidr-blocks", cidr],
  ]);
  const tagNames = Object.keys(instance.tags).filter((tag) => /^[A-Za-z0-9_.:+=@-]+$/.test(tag));
  return directory([
    ["ami-id", instance.metadata.ami_id ?? "ami-00000000000000000"],
    ["ami-launch-index", "0"],
    ["ami-manifest-path", "(unknown)"],
    ["block-device-mapping", directory([["ami", "/dev/vda"], ["root", "/dev/vda"]])],
    ["hostname", hostname],
    ["instance-action", "none"],
    ["instance-id", instance.instanceId],
    ["instance-life-cycle", "on-demand"],
    ["instance-type", instanceType(instance)],
    ["local-hostname", hostname],
    ["local-ipv4", instance.ipv4],
    ["mac", instance.mac],
    [
      "network",
      directory([["interfaces", directory([["macs", directory([[instance.mac, macDirectory]])]])]]),
    ],
    [
      "placement",
      directory([
        ["availability-zone", availabilityZone(config, instance)],
        ["region", config.service.region],
      ]),
    ],
    ["public-keys", keyNames.length > 0 ? publicKeys : null],
    ["reservation-id", `r-${hexId(instance)}`],
    ["security-groups", "default"],
    ["services", directory([["domain", config.dnsmasq.domain ?? "localdomain"], ["partition", "aws"]])],
    [
      "tags",
      tagNames.length > 0
        ? directory([["instance", directory(tagNames.map((tag) => [tag, instance.tags[tag]!]))]])
        : null,
    ],
  ]);
}

/** The instance identity document cloud-init reads on the IMDSv2 path. */
export function instanceIdentityDocument(config: Config, instance: Instance): Record<string, unknown> {
  return {
    accountId: "000000000000",
    architecture: "x86_64",
    availabilityZone: availabilityZone(config, instance),
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: null,
    imageId: instance.metadata.ami_id ?? "ami-00000000000000000",
    instanceId: instance.instanceId,
    instanceType: instanceType(instance),
    kernelId: null,
    pendingTime: instance.createdAt.replace(/\.\d+Z$/, "Z"),
    privateIp: instance.ipv4,
    ramdiskId: null,
    region: config.service.region,
    version: "2017-09-30",
  };
}

/** The `dynamic/` tree of an instance. */
export function ec2DynamicTree(config: Config, instance: Instance): TreeDirectory {
  return directory([
    [
      "instance-identity",
      directory([["document", JSON.stringify(instanceIdentityDocument(config, instance), null, 2)]]),
    ],
  ]);
}
