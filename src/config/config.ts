/**
 * The effective configuration, typed: what every other part reads.
 *
 * @module
 */

import type { Ipv4Network } from "../ipam/ipv4.ts";
import type { Ipv6Prefix } from "../ipam/ipv6.ts";

/** Who runs dnsmasq: its own systemd unit, mdserver as a child, or nobody mdserver knows of. */
export type DnsmasqManage = "unit" | "child" | "no";

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
    /** md_server's POST /instance-upload on the metadata listener (loopback only). */
    legacyUpload: boolean;
  };
  /** `[store]`: where instances live: Deno KV (`kv_file`, one host) or an etcd v3 cluster (a fleet). */
  store: {
    backend: "kv" | "etcd";
    /** Client URLs of the etcd members. */
    endpoints: string[];
    /** Every etcd key lives under this prefix (starts and ends with "/"). */
    prefix: string;
    /** Time one etcd endpoint has to answer, in ms. */
    timeoutMs: number;
  };
  /** `[loglevels]`: the levels of the log and its outputs. */
  loglevels: { base: string; stream: string; file: string };
  /** `[admin]`: where the admin API listens. */
  admin: {
    /** TCP listener address, or null (off, the default). */
    listenAddress: string | null;
    port: number;
    /** The unix socket (mode 0660), or null. */
    socket: string | null;
    /** The bearer token the TCP listener requires (written by install, root-only). */
    tokenFile: string;
  };
  /** `[limits]`: what one guest may hold on the metadata listener (sizes in bytes, times in ms). */
  limits: {
    maxConnections: number;
    maxConnectionsPerSource: number;
    maxHeadBytes: number;
    maxHeaders: number;
    maxBodyBytes: number;
    headTimeoutMs: number;
    bodyTimeoutMs: number;
    idleTimeoutMs: number;
    writeTimeoutMs: number;
    /** How long SIGTERM lets requests in flight finish before every connection is closed. */
    shutdownTimeoutMs: number;
  };
  /** `[events]`: cloud-init's boot events (its webhook reporter) and the boots kept per instance. */
  events: {
    /** The built-in vendor-data asks cloud-init to report to the events endpoint, which takes them. */
    enabled: boolean;
    /** Largest event body, in bytes. */
    maxEventBytes: number;
    /** Events kept per boot; more are counted as dropped. */
    maxEventsPerBoot: number;
    /** Events per second one instance may post, sustained… */
    rate: number;
    /** …and in a burst. */
    burst: number;
    /** Boots kept per instance, the current one included. */
    history: number;
  };
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
    /** unit: its own systemd unit, restarted through a request file; child: a supervised child; no: files only. */
    manage: DnsmasqManage;
    binary: string;
    /** The network's IPv6 side (router advertisements, DHCPv6), or null when `ipv6_prefix = no`. */
    ipv6: Ipv6Prefix | null;
  };
  /** `[configdrive]`: the config drive images built for domains that ask for one (docs/configdrive.md). */
  configDrive: {
    /** The folder of the images: a domain asks for `<dir>/<uuid>.iso` as a CD-ROM. */
    dir: string;
    /** The volume label (cloud-init looks for `config-2`). */
    label: string;
    /** At most this many images at once; more are not built (the guest boots without one). */
    maxImages: number;
    /** At most this many bytes of files in one image. */
    maxBytes: number;
    /** Whom the hook gives each image it built to: `auto` (qemu.conf), `none`, or `NAME[:GROUP]`. */
    qemuUser: string;
    /** libvirt's qemu.conf, read by `qemu_user = auto`. */
    qemuConf: string;
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

/** `[dnsmasq] ipv6_prefix` by default: a unique local (RFC 4193) /64 that config/mds-network.xml carries. */
export const DEFAULT_IPV6_PREFIX = "fd07:5fd4:b385::/64";
/** The release date this build reports as `service.release_date`. */
export const RELEASE_DATE = "2026-11-21";
