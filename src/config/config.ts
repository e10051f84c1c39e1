/**
 * The effective configuration, typed: what every other part reads.
 *
 * @module
 */

import type { Ipv4Network } from "../ipam/ipv4.ts";

/** How IMDSv2 session tokens are treated. */
export type ImdsTokens = "optional" | "required";

/** The effective configuration, typed and validated. */
export interface Config {
  /** Files read, in the order they were applied. */
  files: string[];
  /** Things worth telling the operator that are not errors. */
  warnings: string[];
  /** `[mdserver]`: the metadata listener, templates and files. */
  mdserver: {
    listenAddress: string;
    port: number;
    userdataDir: string;
    userdataSuffixes: string[];
    password: string | null;
    defaultTemplate: string | null;
    vendordataTemplate: string | null;
    dbFile: string;
    kvFile: string;
    debug: boolean;
    debugUserdata: boolean;
    logfile: string | null;
    imdsTokens: ImdsTokens;
    /** `verify_mac`: true (yes), false (no), or "auto": checked where the neighbour table can be read. */
    verifyMac: boolean | "auto";
    /** Which guest APIs are served (`ec2`, `openstack`, `nocloud` = yes|no). */
    apis: { ec2: boolean; openstack: boolean; nocloud: boolean };
    /** Seconds between two log lines about store contention (one line per burst). */
    storeBusyLogInterval: number;
  };
  /** `[loglevels]`: the levels of the log and its outputs. */
  loglevels: { base: string; stream: string; file: string };
  /** `[admin]`: where the admin API listens. */
  admin: { listenAddress: string; port: number; socket: string | null };
  /** `[public-keys]` in file order: name → key. */
  publicKeys: Map<string, string>;
  /** `[dnsmasq]`: the managed network and dnsmasq's files. */
  dnsmasq: {
    user: string;
    baseDir: string;
    runDir: string;
    netName: string;
    network: Ipv4Network;
    gateway: string;
    poolStart: string | null;
    poolEnd: string | null;
    useDns: boolean;
    interface: string;
    listenAddress: string | null;
    dnsPort: number;
    leaseLen: number;
    prefix: string | null;
    domain: string | null;
    entryOrder: string[];
    manage: boolean;
    binary: string;
  };
  /** `[template-data]` with `_config_items_` resolved: name → value. */
  templateData: Record<string, string>;
  /** `[service]`: what the service says about itself. */
  service: {
    name: string;
    type: string;
    version: string;
    releaseDate: string;
    hostname: string;
    location: string;
    region: string;
    ec2Versions: string[];
  };
  /** Every effective `section.key` → raw string value, for dumps and `_config_items_`. */
  raw: Map<string, string>;
}

/** The version this build reports as `service.version`. */
export const VERSION = "0.1.0";
/** The release date this build reports as `service.release_date`. */
export const RELEASE_DATE = "2026-11-21";
