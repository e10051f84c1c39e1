/**
 * Every known section and key with its default, and how values are read
 * (md_server's yes/no words).
 *
 * @module
 */

import { DEFAULT_IPV6_PREFIX, RELEASE_DATE, VERSION } from "./config.ts";

/** Sections → keys → default (`null`: unset); `"any"` takes every key. */
export type Schema = Record<string, Record<string, string | null> | "any">;

/**
 * Every known section and key with its default. `null` means "unset".
 * md_server's keys keep md_server's defaults; the new keys are documented in
 * config/mdserver.conf.
 */
export function schema(hostname: string): Schema {
  return {
    mdserver: {
      port: "80",
      listen_address: "169.254.169.254",
      loglevel: null, // md_server's old name for loglevels.base
      debug: "no",
      debug_userdata: "no",
      logfile: null,
      userdata_dir: "/etc/mdserver/userdata",
      userdata_suffixes: ":.yaml",
      password: null,
      default_template: null,
      vendordata_template: null,
      db_file: "/var/lib/mdserver/db_file.json",
      kv_file: "/var/lib/mdserver/mdserver.kv",
      hostname_prefix: "vm",
      "hostname-prefix": null, // spelled so in md_server's test configuration
      imds_tokens: "optional",
      verify_mac: "auto",
      legacy_upload: "yes",
      ec2: "yes",
      openstack: "yes",
      nocloud: "yes",
      store_busy_log_interval: "10",
    },
    loglevels: { base: "info", stream: "info", file: "debug" },
    store: {
      backend: "kv",
      endpoints: "http://127.0.0.1:2379",
      prefix: "/mdserver/",
      timeout: "2000",
    },
    admin: {
      listen_address: null,
      port: "8774",
      socket: "/run/mdserver/admin.sock",
      token_file: "/etc/mdserver/admin.token",
      socket_timeout: "700",
    },
    limits: {
      max_connections: "1000",
      max_connections_per_source: "32",
      max_head_size: "8192",
      max_headers: "64",
      max_body_size: "65536",
      head_timeout: "5",
      body_timeout: "10",
      idle_timeout: "15",
      write_timeout: "10",
      shutdown_timeout: "5",
    },
    events: {
      enabled: "yes",
      max_event_size: "8192",
      max_events_per_boot: "1000",
      rate: "50",
      burst: "300",
      history: "5",
    },
    "public-keys": "any",
    dnsmasq: {
      user: "mdserver",
      base_dir: "/var/lib/mdserver/dnsmasq",
      run_dir: "/var/run/mdserver",
      net_name: "mds",
      net_address: "10.122.0.0",
      net_prefix: "16",
      gateway: "10.122.0.1",
      pool_start: null,
      pool_end: null,
      use_dns: "no",
      interface: "br-mds",
      listen_address: null,
      dns_port: "53",
      lease_len: "86400",
      prefix: "no",
      domain: "no",
      entry_order: "base",
      manage: "no",
      binary: "dnsmasq",
      ipv6_prefix: DEFAULT_IPV6_PREFIX,
    },
    "template-data": "any",
    configdrive: {
      dir: "/var/lib/mdserver/seeds",
      label: "config-2",
      max_images: "1024",
      max_size: "4194304",
      qemu_user: "auto",
      qemu_conf: "/etc/libvirt/qemu.conf",
    },
    service: {
      name: "mdserver",
      type: "mdserver",
      version: VERSION,
      release_date: RELEASE_DATE,
      hostname,
      location: hostname.split(".")[0] ?? hostname,
      region: null,
      ec2_versions: "2009-04-04",
    },
    _include_: { files: null, directories: null },
  };
}

/** Keys whose values are file system paths, resolved against their file's folder. */
export const PATH_KEYS = new Set([
  "mdserver.userdata_dir",
  "mdserver.default_template",
  "mdserver.vendordata_template",
  "mdserver.db_file",
  "mdserver.kv_file",
  "mdserver.logfile",
  "admin.socket",
  "admin.token_file",
  "dnsmasq.base_dir",
  "dnsmasq.run_dir",
  "configdrive.dir",
  "configdrive.qemu_conf",
]);

/** md_server's strtobool: yes/no words, or null when the text is neither. */
export function parseBool(text: string): boolean | null {
  const value = text.trim().toLowerCase();
  if (["y", "yes", "t", "true", "on", "1"].includes(value)) return true;
  if (["n", "no", "f", "false", "off", "0"].includes(value)) return false;
  return null;
}

/** A `,`-separated list, trimmed, empty items dropped. */
export function splitCommas(value: string): string[] {
  return value.split(",").map((item) => item.trim()).filter((item) => item !== "");
}
