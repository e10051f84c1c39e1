/**
 * Configuration: md_server's INI files read unchanged, with mdserver's new
 * keys, defaults and validation. Every error names the file, the section and
 * the key, and a configuration with any error is never used.
 *
 * @module
 */

import { dirname, isAbsolute, join, resolve } from "node:path";
import { type IniEntry, parseIni } from "./ini.ts";
import { type Ipv4Network, networkContains, parseIpv4 } from "./ipam.ts";
import { type Ipv6Prefix, parseIpv6Prefix } from "./ipv6.ts";

/** Where the configuration is looked for when no `--config` is given. */
export const DEFAULT_CONFIG_FILE = "/etc/mdserver/mdserver.conf";
/** `[dnsmasq] ipv6_prefix` by default: a unique local (RFC 4193) /64 that config/mds-network.xml carries. */
export const DEFAULT_IPV6_PREFIX = "fd07:5fd4:b385::/64";

/** How IMDSv2 session tokens are treated. */
export type ImdsTokens = "optional" | "required";

/** The effective configuration, typed and validated. */
export interface Config {
  /** Files read, in the order they were applied. */
  files: string[];
  /** Things worth telling the operator that are not errors. */
  warnings: string[];
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
    verifyMac: boolean;
  };
  loglevels: { base: string; stream: string; file: string };
  admin: { listenAddress: string; port: number; socket: string | null };
  /** `[public-keys]` in file order: name → key. */
  publicKeys: Map<string, string>;
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
    /** The network's IPv6 side (router advertisements, DHCPv6), or null when `ipv6_prefix = no`. */
    ipv6: Ipv6Prefix | null;
  };
  /** `[template-data]` with `_config_items_` resolved: name → value. */
  templateData: Record<string, string>;
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
const RELEASE_DATE = "2026-11-21";

/** One problem in a configuration, located by file, section and key. */
export interface ConfigProblem {
  file: string;
  section: string;
  key: string | null;
  message: string;
}

/** Thrown when a configuration cannot be used; lists every problem found. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Formats a problem as `file: [section] key: message`. */
export function formatProblem(problem: ConfigProblem): string {
  const where = problem.key === null ? `[${problem.section}]` : `[${problem.section}] ${problem.key}`;
  return `${problem.file}: ${where}: ${problem.message}`;
}

type Schema = Record<string, Record<string, string | null> | "any">;

/**
 * Every known section and key with its default. `null` means "unset".
 * md_server's keys keep md_server's defaults; the new keys are documented in
 * config/mdserver.conf.
 */
function schema(hostname: string): Schema {
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
      verify_mac: "no",
    },
    loglevels: { base: "info", stream: "info", file: "debug" },
    admin: { listen_address: "127.0.0.1", port: "8774", socket: null },
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
const PATH_KEYS = new Set([
  "mdserver.userdata_dir",
  "mdserver.default_template",
  "mdserver.vendordata_template",
  "mdserver.db_file",
  "mdserver.kv_file",
  "mdserver.logfile",
  "admin.socket",
  "dnsmasq.base_dir",
  "dnsmasq.run_dir",
]);

/** What loadConfig needs from the outside world. */
export interface ConfigEnvironment {
  readTextFile(path: string): Promise<string>;
  stat(path: string): Promise<{ isFile: boolean; isDirectory: boolean } | null>;
  readDir(path: string): Promise<string[]>;
  hostname(): string;
}

/** The real file system and host name. */
export const realConfigEnvironment: ConfigEnvironment = {
  readTextFile: (path) => Deno.readTextFile(path),
  async stat(path) {
    try {
      const info = await Deno.stat(path);
      return { isFile: info.isFile, isDirectory: info.isDirectory };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  },
  async readDir(path) {
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) {
      if (entry.isFile || entry.isSymlink) names.push(entry.name);
    }
    return names;
  },
  hostname: () => {
    try {
      return Deno.hostname();
    } catch {
      return "localhost";
    }
  },
};

/**
 * Reads the configuration file and its `[_include_]`s, applies defaults and
 * validates. Throws ConfigError listing every problem.
 */
export async function loadConfig(
  file: string,
  env: ConfigEnvironment = realConfigEnvironment,
): Promise<Config> {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const mainFile = resolve(file);
  const files: string[] = [];
  const values = new Map<string, IniEntry>();

  const main = await readDocument(mainFile, env, problems);
  if (main === null) throw new ConfigError(problems);
  files.push(mainFile);
  applyEntries(main, values);

  // md_server: directories first (each one's *.conf in lexical order), then
  // files, left to right; paths that do not exist are skipped.
  const includeDirs = splitList(values.get("_include_.directories")?.value);
  const includeFiles = splitList(values.get("_include_.files")?.value);
  const included: string[] = [];
  for (const dir of includeDirs) {
    const path = resolve(dirname(mainFile), dir);
    const info = await statOrProblem(path, mainFile, "directories", env, problems);
    if (info === null) {
      warnings.push(`include directory "${path}" does not exist; skipped`);
      continue;
    }
    if (info === undefined) continue;
    if (!info.isDirectory) {
      problems.push({
        file: mainFile,
        section: "_include_",
        key: "directories",
        message: `"${path}" is not a directory`,
      });
      continue;
    }
    let names: string[];
    try {
      names = await env.readDir(path);
    } catch (error) {
      problems.push({
        file: mainFile,
        section: "_include_",
        key: "directories",
        message: `cannot read directory "${path}": ${errorMessage(error)}`,
      });
      continue;
    }
    names.filter((name) => name.endsWith(".conf") && !name.startsWith("."))
      .sort()
      .forEach((name) => included.push(join(path, name)));
  }
  for (const entry of includeFiles) {
    const path = resolve(dirname(mainFile), entry);
    const info = await statOrProblem(path, mainFile, "files", env, problems);
    if (info === null) {
      warnings.push(`include file "${path}" does not exist; skipped`);
      continue;
    }
    if (info === undefined) continue;
    if (!info.isFile) {
      problems.push({
        file: mainFile,
        section: "_include_",
        key: "files",
        message: `"${path}" is not a regular file`,
      });
      continue;
    }
    included.push(path);
  }
  for (const path of included) {
    const document = await readDocument(path, env, problems, {
      file: mainFile,
      section: "_include_",
    });
    if (document === null) continue;
    files.push(path);
    for (const entry of document.entries) {
      if (entry.section === "_include_") {
        warnings.push(
          `${path}: [_include_] only counts in the main file; ignored`,
        );
        continue;
      }
      values.set(`${entry.section}.${entry.key}`, entry);
    }
  }

  const hostname = env.hostname();
  const known = schema(hostname);
  for (const entry of values.values()) {
    const section = known[entry.section];
    if (section === undefined) {
      problems.push({
        file: entry.file,
        section: entry.section,
        key: null,
        message: `unknown section (line ${entry.line}); known sections: ${
          Object.keys(known).map((name) => `[${name}]`).join(", ")
        }`,
      });
    } else if (section !== "any" && !(entry.key in section)) {
      problems.push({
        file: entry.file,
        section: entry.section,
        key: entry.key,
        message: `unknown key (line ${entry.line})`,
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  // md_server's old key wins over the new one when both are set.
  const oldLevel = values.get("mdserver.loglevel");
  if (oldLevel) values.set("loglevels.base", { ...oldLevel, key: "base", section: "loglevels" });

  const raw = new Map<string, string>();
  for (const [sectionName, section] of Object.entries(known)) {
    if (section === "any") continue;
    for (const [key, fallback] of Object.entries(section)) {
      const entry = values.get(`${sectionName}.${key}`);
      const value = entry ? entry.value : fallback;
      if (value === null) continue;
      const id = `${sectionName}.${key}`;
      raw.set(
        id,
        PATH_KEYS.has(id) && entry && value !== "" && !isAbsolute(value) ? resolve(dirname(entry.file), value) : value,
      );
    }
  }
  for (const entry of values.values()) {
    if (known[entry.section] === "any") {
      raw.set(`${entry.section}.${entry.key}`, entry.value);
    }
  }

  const config = buildConfig(raw, values, { files, warnings, problems });
  if (problems.length > 0) throw new ConfigError(problems);
  const userdataInfo = await env.stat(config.mdserver.userdataDir).catch(() => null);
  if (userdataInfo === null || !userdataInfo.isDirectory) {
    problems.push(
      located(
        values,
        "mdserver",
        "userdata_dir",
        `directory "${config.mdserver.userdataDir}" does not exist`,
        mainFile,
      ),
    );
  }
  for (const key of ["default_template", "vendordata_template"] as const) {
    const path = raw.get(`mdserver.${key}`);
    if (!path) continue;
    const info = await env.stat(path).catch(() => null);
    if (info === null) {
      problems.push(located(values, "mdserver", key, `"${path}" does not exist`, mainFile));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

interface BuildState {
  files: string[];
  warnings: string[];
  problems: ConfigProblem[];
}

function buildConfig(
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

  const netPrefix = int("dnsmasq.net_prefix", 8, 30);
  const netAddress = address("dnsmasq.net_address");
  const network: Ipv4Network = { address: parseIpv4(netAddress) ?? 0, prefix: netPrefix };
  const netBase = parseIpv4(netAddress);
  if (netBase !== null && problems.length === 0) {
    const mask = netPrefix === 0 ? 0 : (0xffffffff << (32 - netPrefix)) >>> 0;
    if (((netBase & mask) >>> 0) !== netBase) {
      fail("dnsmasq.net_address", `"${netAddress}" has host bits set for prefix /${netPrefix}`);
    }
  }
  const within = (id: string, value: string | null) => {
    if (value === null) return;
    const parsed = parseIpv4(value);
    if (parsed === null) fail(id, `"${value}" is not an IPv4 address`);
    else if (!networkContains(network, parsed)) {
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
  const listenAddress = address("mdserver.listen_address");
  const adminListen = get("admin.listen_address");
  if (parseIpv4(adminListen) === null && adminListen !== "::1") {
    fail("admin.listen_address", `"${adminListen}" is not an IPv4 address or ::1`);
  }
  for (const id of ["loglevels.base", "loglevels.stream", "loglevels.file"]) {
    if (!LOG_LEVELS.includes(get(id).toLowerCase())) {
      fail(id, `expected one of ${LOG_LEVELS.join(", ")}, got "${get(id)}"`);
    }
  }

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
      verifyMac: bool("mdserver.verify_mac"),
    },
    loglevels: {
      base: get("loglevels.base").toLowerCase(),
      stream: get("loglevels.stream").toLowerCase(),
      file: get("loglevels.file").toLowerCase(),
    },
    admin: {
      listenAddress: adminListen,
      port: int("admin.port", 0, 65535),
      socket: optional("admin.socket"),
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
      manage: bool("dnsmasq.manage"),
      binary: get("dnsmasq.binary"),
      ipv6,
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

async function readDocument(
  path: string,
  env: ConfigEnvironment,
  problems: ConfigProblem[],
  includedFrom?: { file: string; section: string },
) {
  let text: string;
  try {
    text = await env.readTextFile(path);
  } catch (error) {
    problems.push({
      file: includedFrom?.file ?? path,
      section: includedFrom?.section ?? "-",
      key: includedFrom ? null : null,
      message: `cannot read "${path}": ${errorMessage(error)}`,
    });
    return null;
  }
  try {
    return parseIni(text, path);
  } catch (error) {
    problems.push({ file: path, section: "-", key: null, message: errorMessage(error) });
    return null;
  }
}

async function statOrProblem(
  path: string,
  mainFile: string,
  key: string,
  env: ConfigEnvironment,
  problems: ConfigProblem[],
) {
  try {
    return await env.stat(path);
  } catch (error) {
    problems.push({
      file: mainFile,
      section: "_include_",
      key,
      message: `cannot read "${path}": ${errorMessage(error)}`,
    });
    return undefined;
  }
}

function applyEntries(document: { entries: IniEntry[] }, values: Map<string, IniEntry>) {
  for (const entry of document.entries) values.set(`${entry.section}.${entry.key}`, entry);
}

function located(
  values: Map<string, IniEntry>,
  section: string,
  key: string,
  message: string,
  fallbackFile: string,
): ConfigProblem {
  const entry = values.get(`${section}.${key}`);
  return entry
    ? { file: entry.file, section, key, message: `${message} (line ${entry.line})` }
    : { file: fallbackFile, section, key, message: `${message} (default value)` };
}

function splitId(id: string): [string, string] {
  const dot = id.indexOf(".");
  return [id.slice(0, dot), id.slice(dot + 1)];
}

function splitList(value: string | undefined): string[] {
  return (value ?? "").split(":").map((item) => item.trim()).filter((item) => item !== "");
}

function splitCommas(value: string): string[] {
  return value.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

/** md_server's strtobool: yes/no words, or null when the text is neither. */
export function parseBool(text: string): boolean | null {
  const value = text.trim().toLowerCase();
  if (["y", "yes", "t", "true", "on", "1"].includes(value)) return true;
  if (["n", "no", "f", "false", "off", "0"].includes(value)) return false;
  return null;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const SECRET_KEYS = ["mdserver.password"];

/** The effective configuration as INI text, secrets masked; what check-config prints. */
export function formatConfig(config: Config): string {
  const sections = new Map<string, string[]>();
  for (const [id, value] of config.raw) {
    const [section, key] = splitId(id);
    if (section === "_include_") continue;
    const shown = SECRET_KEYS.includes(id) ? "********" : value;
    const lines = sections.get(section) ?? [];
    lines.push(`${key} = ${shown.replaceAll("\n", "\n    ")}`);
    sections.set(section, lines);
  }
  const parts = [`# files read: ${config.files.join(", ")}`];
  for (const warning of config.warnings) parts.push(`# warning: ${warning}`);
  for (const [section, lines] of sections) {
    parts.push(`\n[${section}]\n${lines.join("\n")}`);
  }
  return parts.join("\n") + "\n";
}
