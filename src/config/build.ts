/**
 * The typed, validated configuration built from the raw `section.key`
 * values: every check that a value is usable, with the problem located.
 *
 * @module
 */

import type { IniEntry } from "./ini.ts";
import { type Ipv4Network, networkContains, parseIpv4, prefixMask } from "../ipam/ipv4.ts";
import { type Ipv6Prefix, parseIpv6Prefix } from "../ipam/ipv6.ts";
import type { Config, DnsmasqManage } from "./config.ts";
import { type ConfigProblem, located, splitId } from "./problems.ts";
import { parseBool, splitCommas } from "./schema.ts";

/** What building adds to the raw values: files read, warnings, and where problems go. */
export interface BuildState {
  files: string[];
  warnings: string[];
  problems: ConfigProblem[];
}

/** The typed configuration of raw values; problems are pushed to `state.problems`. */
export function buildConfig(
  raw: Map<string, string>,
  values: Map<string, IniEntry>,
  state: BuildState,
): Config {
  const { problems } = state;
  const mainFile = state.files[0]!;
  const get = (id: string): string => raw.get(id) ?? "";
  const optional = (id: string): string | null => {
    const value = raw.get(id);
    return value === undefined || value === "" || value.toLowerCase() === "none" ? null : value;
  };
  const fail = (id: string, message: string) => {
    const [section, key] = splitId(id);
    problems.push(located(values, section, key, message, mainFile));
  };
  const bool = (id: string): boolean => {
    const value = parseBool(get(id));
    if (value === null) fail(id, `expected yes or no, got "${get(id)}"`);
    return value ?? false;
  };
  const int = (id: string, min: number, max: number): number => {
    const text = get(id);
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(value >= min && value <= max)) {
      fail(id, `expected a whole number from ${min} to ${max}, got "${text}"`);
      return min;
    }
    return value;
  };
  const address = (id: string): string => {
    const text = get(id);
    if (parseIpv4(text) === null) fail(id, `"${text}" is not an IPv4 address`);
    return text;
  };
  const boolOrValue = (id: string): string | null => {
    const text = get(id);
    const asBool = parseBool(text);
    if (asBool === false || text === "") return null;
    if (asBool === true) {
      fail(id, `expected a name or "no", got "${text}"`);
      return null;
    }
    return text;
  };

  const problemsBeforeNetwork = problems.length;
  const netPrefix = int("dnsmasq.net_prefix", 8, 30);
  const netAddress = address("dnsmasq.net_address");
  // A network that failed its own check is not used to judge other keys (no follow-on errors from a fallback).
  const networkUsable = problems.length === problemsBeforeNetwork;
  const network: Ipv4Network = { address: parseIpv4(netAddress) ?? 0, prefix: netPrefix };
  const netBase = parseIpv4(netAddress);
  if (netBase !== null && problems.length === 0) {
    if (((netBase & prefixMask(netPrefix)) >>> 0) !== netBase) {
      fail("dnsmasq.net_address", `"${netAddress}" has host bits set for prefix /${netPrefix}`);
    }
  }
  const within = (id: string, value: string | null) => {
    if (value === null) return;
    const parsed = parseIpv4(value);
    if (parsed === null) fail(id, `"${value}" is not an IPv4 address`);
    else if (networkUsable && !networkContains(network, parsed)) {
      fail(id, `"${value}" is outside the network ${netAddress}/${netPrefix}`);
    }
  };
  const gateway = address("dnsmasq.gateway");
  within("dnsmasq.gateway", gateway);
  const poolStart = optional("dnsmasq.pool_start");
  const poolEnd = optional("dnsmasq.pool_end");
  within("dnsmasq.pool_start", poolStart);
  within("dnsmasq.pool_end", poolEnd);
  const dnsmasqListen = optional("dnsmasq.listen_address");
  if (dnsmasqListen !== null && parseIpv4(dnsmasqListen) === null) {
    fail("dnsmasq.listen_address", `"${dnsmasqListen}" is not an IPv4 address`);
  }

  const ipv6Text = get("dnsmasq.ipv6_prefix");
  let ipv6: Ipv6Prefix | null = null;
  if (parseBool(ipv6Text) !== false && ipv6Text !== "") {
    const parsed = parseIpv6Prefix(ipv6Text);
    if (typeof parsed === "string") fail("dnsmasq.ipv6_prefix", `${parsed}; or "no" for no IPv6`);
    else ipv6 = parsed;
  }

  const imdsTokens = get("mdserver.imds_tokens");
  if (imdsTokens !== "optional" && imdsTokens !== "required") {
    fail("mdserver.imds_tokens", `expected "optional" or "required", got "${imdsTokens}"`);
  }
  const apis = { ec2: bool("mdserver.ec2"), openstack: bool("mdserver.openstack"), nocloud: bool("mdserver.nocloud") };
  if (imdsTokens === "required" && !apis.ec2) {
    fail("mdserver.imds_tokens", `"required" needs ec2 = yes: tokens are issued by PUT /latest/api/token`);
  }
  const listenAddress = address("mdserver.listen_address");
  const adminListen = optional("admin.listen_address");
  if (adminListen !== null) checkAdminAddress(adminListen, { listenAddress, network, fail });
  for (const id of ["loglevels.base", "loglevels.stream", "loglevels.file"]) {
    if (!LOG_LEVELS.includes(get(id).toLowerCase())) {
      fail(id, `expected one of ${LOG_LEVELS.join(", ")}, got "${get(id)}"`);
    }
  }

  const store = storeSection(get, int, fail);

  const entryOrder = splitCommas(get("dnsmasq.entry_order")).map((item) => item.toLowerCase());
  for (const item of entryOrder) {
    if (!["base", "prefix", "domain", "fqdn"].includes(item)) {
      fail("dnsmasq.entry_order", `unknown entry "${item}"; use base, prefix, domain or fqdn`);
    }
  }
  const domain = boolOrValue("dnsmasq.domain");
  if (domain !== null && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(domain)) {
    fail("dnsmasq.domain", `"${domain}" is not a valid DNS domain`);
  }
  const prefix = boolOrValue("dnsmasq.prefix");
  if (prefix !== null && !/^[a-z0-9-]+$/i.test(prefix)) {
    fail("dnsmasq.prefix", `"${prefix}" may hold only letters, digits and "-"`);
  }

  const publicKeys = new Map<string, string>();
  for (const [id, value] of raw) {
    if (id.startsWith("public-keys.")) publicKeys.set(id.slice("public-keys.".length), value);
  }
  const templateData = resolveTemplateData(raw, values, mainFile, problems);
  const ec2Versions = splitCommas(get("service.ec2_versions"));

  return {
    files: state.files,
    warnings: state.warnings,
    mdserver: {
      listenAddress,
      port: int("mdserver.port", 0, 65535),
      userdataDir: get("mdserver.userdata_dir"),
      userdataSuffixes: get("mdserver.userdata_suffixes").split(":"),
      password: optional("mdserver.password"),
      defaultTemplate: optional("mdserver.default_template"),
      vendordataTemplate: optional("mdserver.vendordata_template"),
      dbFile: get("mdserver.db_file"),
      kvFile: get("mdserver.kv_file"),
      debug: bool("mdserver.debug"),
      debugUserdata: bool("mdserver.debug_userdata"),
      logfile: optional("mdserver.logfile"),
      imdsTokens: imdsTokens === "required" ? "required" : "optional",
      verifyMac: get("mdserver.verify_mac").trim().toLowerCase() === "auto" ? "auto" : bool("mdserver.verify_mac"),
      legacyUpload: bool("mdserver.legacy_upload"),
      apis,
      storeBusyLogInterval: int("mdserver.store_busy_log_interval", 1, 3600),
    },
    store,
    loglevels: {
      base: get("loglevels.base").toLowerCase(),
      stream: get("loglevels.stream").toLowerCase(),
      file: get("loglevels.file").toLowerCase(),
    },
    admin: {
      listenAddress: adminListen,
      port: int("admin.port", 0, 65535),
      socket: optional("admin.socket"),
      tokenFile: get("admin.token_file"),
    },
    limits: {
      maxConnections: int("limits.max_connections", 1, 1_000_000),
      maxConnectionsPerSource: int("limits.max_connections_per_source", 1, 1_000_000),
      maxHeadBytes: int("limits.max_head_size", 1024, 1024 * 1024),
      maxHeaders: int("limits.max_headers", 8, 1000),
      maxBodyBytes: int("limits.max_body_size", 1024, 64 * 1024 * 1024),
      headTimeoutMs: int("limits.head_timeout", 1, 3600) * 1000,
      bodyTimeoutMs: int("limits.body_timeout", 1, 3600) * 1000,
      idleTimeoutMs: int("limits.idle_timeout", 1, 3600) * 1000,
      writeTimeoutMs: int("limits.write_timeout", 1, 3600) * 1000,
      shutdownTimeoutMs: int("limits.shutdown_timeout", 1, 8) * 1000,
    },
    events: {
      enabled: bool("events.enabled"),
      maxEventBytes: int("events.max_event_size", 512, 65536),
      maxEventsPerBoot: int("events.max_events_per_boot", 10, 100_000),
      rate: int("events.rate", 1, 10_000),
      burst: int("events.burst", 1, 100_000),
      history: int("events.history", 1, 20),
    },
    publicKeys,
    dnsmasq: {
      user: get("dnsmasq.user"),
      baseDir: get("dnsmasq.base_dir"),
      runDir: get("dnsmasq.run_dir"),
      netName: get("dnsmasq.net_name"),
      network,
      gateway,
      poolStart,
      poolEnd,
      useDns: bool("dnsmasq.use_dns"),
      interface: get("dnsmasq.interface"),
      listenAddress: dnsmasqListen,
      dnsPort: int("dnsmasq.dns_port", 0, 65535),
      leaseLen: int("dnsmasq.lease_len", 120, 2 ** 31),
      prefix,
      domain,
      entryOrder,
      manage: dnsmasqManage(get("dnsmasq.manage"), (message) => fail("dnsmasq.manage", message)),
      binary: get("dnsmasq.binary"),
      ipv6,
    },
    configDrive: {
      dir: get("configdrive.dir"),
      label: configDriveLabel(get("configdrive.label"), (message) => fail("configdrive.label", message)),
      maxImages: int("configdrive.max_images", 0, 100_000),
      maxBytes: int("configdrive.max_size", 1024, 64 * 1024 * 1024),
      qemuUser: qemuUser(get("configdrive.qemu_user"), (message) => fail("configdrive.qemu_user", message)),
      qemuConf: get("configdrive.qemu_conf"),
    },
    templateData,
    service: {
      name: get("service.name"),
      type: get("service.type"),
      version: get("service.version"),
      releaseDate: get("service.release_date"),
      hostname: get("service.hostname"),
      location: get("service.location"),
      region: optional("service.region") ?? get("service.location"),
      ec2Versions: ec2Versions.length > 0 ? ec2Versions : ["2009-04-04"],
    },
    raw,
  };
}

/** `[store]`: the backend, and for etcd its endpoints (http or https URLs), key prefix and timeout. */
function storeSection(
  get: (id: string) => string,
  int: (id: string, min: number, max: number) => number,
  fail: (id: string, message: string) => void,
): Config["store"] {
  const backend = get("store.backend").trim().toLowerCase();
  if (backend !== "kv" && backend !== "etcd") fail("store.backend", `expected "kv" or "etcd", got "${backend}"`);
  const endpoints = splitCommas(get("store.endpoints"));
  for (const endpoint of endpoints) {
    let url: URL | null = null;
    try {
      url = new URL(endpoint);
    } catch {
      // reported below
    }
    if (url === null || !["http:", "https:"].includes(url.protocol) || url.pathname !== "/" || url.search !== "") {
      fail("store.endpoints", `"${endpoint}" is not an etcd client URL like http://10.0.0.5:2379`);
    }
  }
  if (backend === "etcd" && endpoints.length === 0) {
    fail("store.endpoints", "backend = etcd needs at least one endpoint");
  }
  const prefix = get("store.prefix");
  if (!/^\/([A-Za-z0-9._-]+\/)*$/.test(prefix)) {
    fail("store.prefix", `"${prefix}" must start and end with "/" and hold only letters, digits, ".", "_" and "-"`);
  }
  return {
    backend: backend === "etcd" ? "etcd" : "kv",
    endpoints: endpoints.map((endpoint) => endpoint.replace(/\/+$/, "")),
    prefix,
    timeoutMs: int("store.timeout", 100, 60_000),
  };
}

/**
 * The admin API's TCP address: loopback only (127.0.0.0/8 or ::1), never the
 * metadata address, never inside the managed network (whose guests must not
 * reach it).
 */
function checkAdminAddress(
  text: string,
  context: { listenAddress: string; network: Ipv4Network; fail: (id: string, message: string) => void },
) {
  const id = "admin.listen_address";
  if (text === "::1") return;
  const address = parseIpv4(text);
  if (address === null) return context.fail(id, `"${text}" is not an IPv4 address or ::1`);
  if (address >>> 24 !== 127) {
    return context.fail(id, `"${text}" is not a loopback address (127.0.0.0/8 or ::1); the admin API is the host's`);
  }
  if (text === context.listenAddress) {
    return context.fail(id, `"${text}" is the metadata address ([mdserver] listen_address), which guests reach`);
  }
  if (networkContains(context.network, address)) {
    return context.fail(id, `"${text}" lies in the managed network, whose guests must not reach the admin API`);
  }
}

/** An ISO 9660 volume label: at most 32 of A–Z, a–z, 0–9, "_" and "-" (cloud-init looks for "config-2"). */
function configDriveLabel(text: string, fail: (message: string) => void): string {
  const label = text.trim();
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(label)) fail(`"${text}" is not a volume label (1-32 of A-Z a-z 0-9 _ -)`);
  return label;
}

/**
 * `[configdrive] qemu_user`: auto, none, or NAME[:GROUP], each a name, a
 * number, or `+N` as libvirt's qemu.conf writes them. The hook resolves it.
 */
function qemuUser(text: string, fail: (message: string) => void): string {
  const value = text.trim();
  const id = "(?:[A-Za-z0-9_][A-Za-z0-9_.-]*\\$?|\\+\\d+)";
  if (value !== "auto" && value !== "none" && !new RegExp(`^${id}(?::${id})?$`).test(value)) {
    fail(`expected auto, none or NAME[:GROUP], got "${text}"`);
  }
  return value;
}

/** `[dnsmasq] manage`: unit, child or no; md_server-era yes means child. */
function dnsmasqManage(text: string, fail: (message: string) => void): DnsmasqManage {
  const value = text.trim().toLowerCase();
  if (value === "unit" || value === "child") return value;
  const asBool = parseBool(value);
  if (asBool === null) {
    fail(`expected unit, child or no, got "${text}"`);
    return "no";
  }
  return asBool ? "child" : "no";
}

const LOG_LEVELS = ["debug", "info", "warning", "error", "critical"];

function resolveTemplateData(
  raw: Map<string, string>,
  values: Map<string, IniEntry>,
  mainFile: string,
  problems: ConfigProblem[],
): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [id, value] of raw) {
    if (!id.startsWith("template-data.")) continue;
    const key = id.slice("template-data.".length);
    if (key !== "_config_items_") data[key] = value;
  }
  const items = raw.get("template-data._config_items_");
  if (items !== undefined) {
    // md_server's README quotes the list; configparser kept the quotes.
    for (const item of splitCommas(items.replace(/^['"]|['"]$/g, ""))) {
      const value = raw.get(item);
      const key = item.split(".")[1];
      if (value === undefined || key === undefined) {
        problems.push(
          located(
            values,
            "template-data",
            "_config_items_",
            `"${item}" is not a configuration key (use section.key)`,
            mainFile,
          ),
        );
        continue;
      }
      if (!(key in data)) data[key] = value;
    }
  }
  return data;
}
