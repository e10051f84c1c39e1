/**
 * The operator's commands that work through the running service's admin API
 * (so every change goes through the service and its dnsmasq records
 * follow): list, show, delete, user-data, vendor-data, meta-data,
 * known-hosts, gc, reload, password; and smbios and configdrive, which read
 * only the configuration (and virsh).
 * Every request goes through callAdmin() (admin_client.ts).
 *
 * @module
 */

import type { AdminEndpoint } from "../admin/endpoint.ts";
import { runSmbios } from "../seed/smbios.ts";
import { runConfigDriveXml } from "../seed/config_drive_xml.ts";
import { loadConfig } from "../config/mod.ts";
import { runPassword } from "./password.ts";
import { runRegister } from "./register.ts";
import type { Instance } from "../store/instance.ts";
import { AdminError, callAdmin } from "./admin_client.ts";
import { UsageError } from "./args.ts";
import { findCommand } from "./commands.ts";
import { collectGarbage, type GcStore, parseDuration, virshDomainNames } from "./gc.ts";
import { type BootView, problemText, timelineRows } from "./boot_view.ts";
import { rfc3339 } from "./time.ts";

/** The parts of a parsed command line ctl reads (main.ts's CommandLine fits). */
export interface CtlLine {
  /** `args[0]` is the command, then its positional arguments. */
  args: string[];
  /** `--name value` options and `--flag`s. */
  options: Map<string, string | true>;
}

/** What ctl needs from main.ts and the outside world. */
export interface CtlDeps {
  /** The configuration file to read the admin endpoint from. */
  configFile: string;
  /** Writes one line of command output. */
  print(line: string): void;
  /** Shows progress of a long operation; default none. */
  progress?: (line: string) => void;
  /** Lists libvirt's domain names; default: `virsh list --all --name`. */
  listDomains?: (connect: string | null) => Promise<string[]>;
  /** A domain's XML; default: `virsh dumpxml DOMAIN` (register). */
  domainXml?: (domain: string, connect: string | null) => Promise<string>;
  /** The clock, for ages; default the wall clock. */
  now?: () => Date;
  /** Reads the admin endpoint; default readAdminEndpoint. */
  readEndpoint?: (file: string) => Promise<AdminEndpoint>;
}

/** The default age for `gc` without --virsh. */
export const DEFAULT_GC_AGE = "7d";

/** Runs one of the admin commands; returns the exit code. Throws for errors main.ts reports. */
export async function runCtl(line: CtlLine, deps: CtlDeps): Promise<number> {
  const [command] = line.args;
  switch (command) {
    case "list":
      return await list(line, deps);
    case "show":
      return await show(line, deps);
    case "delete":
      return await remove(line, deps);
    case "user-data":
    case "vendor-data":
    case "meta-data": {
      const ref = requireRef(line);
      return await passThrough(`/v1/instances/${encodeURIComponent(ref)}/${command}`, deps, `instance "${ref}"`);
    }
    case "known-hosts":
      return await passThrough("/v1/known-hosts", deps);
    case "nwfilter":
      return await nwfilter(line, deps);
    case "gc":
      return await gc(line, deps);
    case "reload": {
      let answer: { reloaded: string[]; need_restart: string[] };
      try {
        answer = await (await admin(deps, "/v1/reload", "POST")).json();
      } catch (error) {
        if (!(error instanceof AdminError && error.notFound)) throw error;
        throw new AdminError("the running mdserver cannot reload in place; restart it: systemctl restart mdserver");
      }
      deps.print(`reloaded ${answer.reloaded.join(", ")}`);
      for (const key of answer.need_restart) deps.print(`${key} changed: it takes effect at the next restart`);
      return 0;
    }
    // Detection help: needs only the configuration, never the service.
    case "smbios":
      return await runSmbios(line, deps);
    case "configdrive":
      return await runConfigDriveXml(line, { config: await loadConfig(deps.configFile), print: deps.print });
    case "password":
      return await runPassword(line, deps);
    case "register":
      return await runRegister(line, deps);
    default:
      throw new UsageError(`unknown command "${command}"`, null);
  }
}

/** An instance as the admin API lists it (snake_case). */
interface ListedInstance {
  name: string;
  uuid: string;
  instance_id: string;
  mac: string;
  ipv4: string;
  boot_state: string;
  since: string | null;
  [key: string]: unknown;
}

function admin(deps: CtlDeps, path: string, method = "GET", subject?: string, body?: unknown): Promise<Response> {
  return callAdmin({
    configFile: deps.configFile,
    path,
    method,
    ...(subject ? { subject } : {}),
    ...(body === undefined ? {} : { body }),
    ...(deps.readEndpoint ? { readEndpoint: deps.readEndpoint } : {}),
  });
}

function requireRef(line: CtlLine): string {
  const ref = line.args[1];
  if (!ref) throw new UsageError(`${line.args[0]} needs INSTANCE`, findCommand(line.args[0]!) ?? null);
  return ref;
}

/** Formats rows as aligned columns. */
export function formatTable(rows: string[][]): string {
  rows = rows.map((row) => row.map(escapeControls));
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/**
 * Text as a terminal may show it: control characters (an escape sequence
 * could retitle the window, hide lines or fake output), line and paragraph
 * separators and bidirectional overrides become `\x1b` / `\u2028`, and a
 * backslash is doubled so the escapes stay unambiguous.
 */
export function escapeControls(text: string): string {
  return text.replace(
    /[\\\p{Cc}\p{Zl}\p{Zp}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu,
    (c) => {
      if (c === "\\") return "\\\\";
      const code = c.charCodeAt(0);
      return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
    },
  );
}

/** A table cell: never empty, never with spaces (so `awk` and `cut` split rows right). */
function cell(value: string | null | undefined): string {
  return value ? value.replace(/\s+/g, "_") : "-";
}

async function list(line: CtlLine, deps: CtlDeps): Promise<number> {
  const instances = (await (await admin(deps, "/v1/instances")).json()) as ListedInstance[];
  instances.sort((a, b) => a.name.localeCompare(b.name));
  if (line.options.has("json")) {
    deps.print(JSON.stringify(instances, null, 2));
    return 0;
  }
  if (line.options.has("name")) {
    for (const instance of instances) deps.print(instance.name);
    return 0;
  }
  // HOST: the host whose mdserver last uploaded it (where it runs; a fleet's hosts share one list).
  // BOOT: the current boot's state from cloud-init's events (docs/boot-events.md).
  const rows = [["NAME", "ADDRESS", "MAC", "INSTANCE-ID", "STATE", "SINCE", "HOST", "BOOT"]];
  for (const instance of instances) {
    rows.push([
      cell(instance.name),
      instance.ipv4,
      instance.mac,
      instance.instance_id,
      cell(instance.boot_state),
      cell(rfc3339(instance.since)),
      cell(typeof instance.host === "string" ? instance.host : null),
      cell((instance.boot as { state?: string } | null | undefined)?.state),
    ]);
  }
  deps.print(formatTable(rows));
  return 0;
}

async function show(line: CtlLine, deps: CtlDeps): Promise<number> {
  const ref = requireRef(line);
  const instance = (await (await admin(deps, `/v1/instances/${encodeURIComponent(ref)}`, "GET", `instance "${ref}"`))
    .json()) as ListedInstance & {
      vcpus: number | null;
      memory_mib: number | null;
      created_at: string;
      updated_at: string;
      metadata: Record<string, string>;
      tags: Record<string, string>;
      config_drive?: boolean;
      password: { set_at: string; pending: boolean } | null;
      access: {
        first_metadata_at: string | null;
        user_data_at: string | null;
        booted_at: string | null;
        host_keys?: Record<string, string>;
      } | null;
      boots?: BootView[];
    };
  if (line.options.has("json")) {
    deps.print(JSON.stringify(instance, null, 2));
    return 0;
  }
  const rows: string[][] = [
    ["name", instance.name],
    ["uuid", instance.uuid],
    ["instance-id", instance.instance_id],
    ["mac", instance.mac],
    ["address", instance.ipv4],
    ["state", instance.boot_state],
    ["since", rfc3339(instance.since) ?? "-"],
    ["vcpus", String(instance.vcpus ?? "-")],
    ["memory", instance.memory_mib === null ? "-" : `${instance.memory_mib} MiB`],
    ["registered", rfc3339(instance.created_at) ?? "-"],
    ["updated", rfc3339(instance.updated_at) ?? "-"],
    ["metadata-fetched", rfc3339(instance.access?.first_metadata_at) ?? "-"],
    ["user-data-fetched", rfc3339(instance.access?.user_data_at) ?? "-"],
    ["booted", rfc3339(instance.access?.booted_at) ?? "-"],
    ["config-drive", instance.config_drive ? "yes" : "no"],
    [
      "password",
      instance.password
        ? `set ${rfc3339(instance.password.set_at) ?? "-"}${instance.password.pending ? ", not yet delivered" : ""}`
        : "-",
    ],
  ];
  for (const [key, value] of Object.entries(instance.metadata ?? {})) rows.push([`metadata.${key}`, value]);
  for (const [key, value] of Object.entries(instance.tags ?? {})) rows.push([`tag.${key}`, value]);
  for (const key of Object.values(instance.access?.host_keys ?? {})) rows.push(["host-key", key]);
  // The current boot's timeline (docs/boot-events.md), then one line per earlier boot.
  const [boot, ...earlier] = instance.boots ?? [];
  if (boot) rows.push(...timelineRows(boot, (deps.now ?? (() => new Date()))()));
  for (const before of earlier) {
    rows.push([`boot ${before.seq}`, `${before.state} (${before.cause}) ${problemText(before)}`]);
  }
  deps.print(formatTable(rows));
  return 0;
}

async function nwfilter(line: CtlLine, deps: CtlDeps): Promise<number> {
  const path = `/v1/instances/${encodeURIComponent(requireRef(line))}`;
  const instance = (await (await admin(deps, path)).json()) as ListedInstance;
  deps.print(cleanTrafficFilterref(instance.ipv4));
  return 0;
}

/**
 * libvirt's `clean-traffic` filter reference for an interface: with it the
 * guest's port passes only frames from the interface's own MAC and packets
 * from `ipv4` (no MAC, IP or ARP spoofing), so no guest can take another's
 * address, even a stopped one's together with its MAC.
 */
export function cleanTrafficFilterref(ipv4: string): string {
  return `<filterref filter='clean-traffic'>\n  <parameter name='IP' value='${ipv4}'/>\n</filterref>`;
}

async function remove(line: CtlLine, deps: CtlDeps): Promise<number> {
  const ref = requireRef(line);
  const path = `/v1/instances/${encodeURIComponent(ref)}`;
  const result = await (await admin(deps, path, "DELETE", `instance "${ref}"`)).json();
  deps.print(`deleted ${result.deleted} (${result.ipv4} released)`);
  return 0;
}

async function passThrough(path: string, deps: CtlDeps, subject?: string): Promise<number> {
  const text = await (await admin(deps, path, "GET", subject)).text();
  if (text !== "") deps.print(text.endsWith("\n") ? text.slice(0, -1) : text);
  return 0;
}

async function gc(line: CtlLine, deps: CtlDeps): Promise<number> {
  const virsh = line.options.has("virsh");
  const ageText = stringOption(line, "older-than") ?? (virsh ? null : DEFAULT_GC_AGE);
  let olderThanMs: number | null;
  try {
    olderThanMs = ageText === null ? null : parseDuration(ageText);
  } catch (error) {
    throw new UsageError(`--older-than: ${(error as Error).message}`, findCommand("gc")!);
  }
  const connect = stringOption(line, "connect");
  const listDomains = deps.listDomains ?? ((uri: string | null) => virshDomainNames({ connect: uri }));
  const result = await collectGarbage(adminStore(deps), {
    ...(virsh ? { listDomains: () => listDomains(connect) } : {}),
    olderThanMs,
    ...(deps.now ? { now: deps.now } : {}),
    dryRun: line.options.has("dry-run"),
    force: line.options.has("force"),
    progress: (done, total) => deps.progress?.(`gc: removed ${done} of ${total}`),
  });
  deps.progress?.("");
  const verb = result.dryRun ? "would remove" : "removed";
  for (const { instance, reason } of result.removed) {
    deps.print(`${verb} ${instance.name} ${instance.ipv4} ${instance.mac} ${instance.uuid}: ${reason}`);
  }
  const criteria = virsh
    ? `domains libvirt no longer lists${ageText ? `, unchanged for over ${ageText}` : ""}`
    : `instances stopped for over ${ageText}`;
  deps.print(`gc: ${verb} ${result.removed.length} of ${result.total} instance(s) (${criteria})`);
  return 0;
}

/** The admin API as a GcStore: the list, and removals in bulk (one request per batch). */
export function adminStore(deps: Pick<CtlDeps, "configFile" | "readEndpoint">): GcStore {
  const ctl: CtlDeps = { ...deps, print: () => {} };
  return {
    async *list() {
      const listed = (await (await admin(ctl, "/v1/instances")).json()) as ListedInstance[];
      for (const instance of listed) yield fromListed(instance);
    },
    async delete(uuid) {
      return (await this.deleteMany!([uuid])).length === 1;
    },
    async deleteMany(uuids) {
      const answer = await (await admin(ctl, "/v1/instances/delete", "POST", undefined, { uuids })).json();
      return answer.deleted as { uuid: string }[];
    },
  };
}

/** The stored shape gc selects on, from the admin API's snake_case. */
function fromListed(listed: ListedInstance): Instance {
  return {
    name: listed.name,
    uuid: listed.uuid,
    instanceId: listed.instance_id,
    mac: listed.mac,
    ipv4: listed.ipv4,
    state: listed.state,
    stoppedAt: listed.stopped_at ?? null,
    updatedAt: listed.updated_at,
    createdAt: listed.created_at,
  } as Instance;
}

function stringOption(line: CtlLine, name: string): string | null {
  const value = line.options.get(name);
  return typeof value === "string" ? value : null;
}
