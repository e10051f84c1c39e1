/**
 * `main.ts ctl …`: the operator's commands, run against the running service
 * through its admin API (so every change goes through the service and its
 * dnsmasq records follow).
 *
 *   ctl list [--json]                      instances with address, state and when
 *   ctl show <ref> [--json]                one instance (ref: name, UUID, instance-id, MAC, address)
 *   ctl delete <ref>                       remove it and release its address
 *   ctl user-data|vendor-data <ref>        what the guest receives
 *   ctl known-hosts                        ssh known_hosts from phone-home host keys
 *   ctl gc [--virsh [--connect URI]] [--older-than 7d] [--dry-run] [--force]
 *   ctl smbios [DOMAIN] [--datasource nocloud|openstack]   (src/smbios.ts; reads only the configuration)
 *
 * @module
 */

import { type AdminEndpoint, adminLocation, adminRequest, readAdminEndpoint } from "../admin/endpoint.ts";
import { collectGarbage, type GcStore, parseDuration, virshDomainNames } from "./gc.ts";
import type { Instance } from "../store/instance.ts";
import { runSmbios, SMBIOS_USAGE } from "../seed/smbios.ts";

/** The parts of a parsed command line ctl reads (main.ts's CommandLine fits). */
export interface CtlLine {
  /** `args[0]` is the ctl subcommand. */
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
  /** Lists libvirt's domain names; default: `virsh list --all --name`. */
  listDomains?: (connect: string | null) => Promise<string[]>;
  /** The clock, for ages; default the wall clock. */
  now?: () => Date;
  /** Reads the admin endpoint; default readAdminEndpoint. */
  readEndpoint?: (file: string) => Promise<AdminEndpoint>;
}

/** Usage of the ctl commands. */
export const CTL_USAGE = `usage: mdserver ctl <command> [--config FILE]

commands:
  list [--json]              instances: name, address, MAC, instance-id, boot state and since when
  show REF [--json]          one instance (REF: name, UUID, instance-id, MAC or address)
  delete REF                 remove an instance, releasing its address and DNS/DHCP records
  user-data REF              the user-data the guest receives (likewise vendor-data)
  known-hosts                an ssh known_hosts file from the host keys guests phoned home
  nwfilter REF               libvirt's clean-traffic <filterref> with the instance's address, for the
                             domain's <interface> on the managed network (virsh edit), so that the
                             guest can send only from its own MAC and address
  gc [--virsh [--connect URI]] [--older-than AGE] [--dry-run] [--force]
      remove instances whose domains are gone: with --virsh, those libvirt no
      longer lists (virsh list --all --name); without it, those stopped for
      longer than AGE (default 7d; units s m h d w, e.g. 1d12h). --dry-run
      prints what would go. --force goes on when virsh lists no domain at all.
  ${SMBIOS_USAGE}`;

/** The default age for `ctl gc` without --virsh. */
export const DEFAULT_GC_AGE = "7d";

/** Runs `ctl <subcommand>`; returns the exit code. Throws for errors main.ts reports. */
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
      return await passThrough(`/v1/instances/${encodeURIComponent(requireRef(line))}/${command}`, deps);
    case "known-hosts":
      return await passThrough("/v1/known-hosts", deps);
    case "nwfilter":
      return await nwfilter(line, deps);
    case "gc":
      return await gc(line, deps);
    // Detection help: needs only the configuration, never the service.
    case "smbios":
      return await runSmbios(line, deps);
    case undefined:
    case "help":
      deps.print(CTL_USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new TypeError(`unknown ctl command "${command}"\n${CTL_USAGE}`);
  }
}

/** An instance as the admin API lists it. */
interface ListedInstance extends Instance {
  bootState: string;
  access: { firstMetadataAt: string | null; userDataAt: string | null; bootedAt: string | null } | null;
}

async function admin(deps: CtlDeps, path: string, method = "GET"): Promise<Response> {
  const endpoint = await (deps.readEndpoint ?? readAdminEndpoint)(deps.configFile);
  let response: Response;
  try {
    response = await adminRequest(endpoint, path, { method, signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    throw new Error(
      `cannot reach the admin API at ${adminLocation(endpoint)} (is mdserver running?): ${(error as Error).message}`,
    );
  }
  await expectOk(response, `${method} ${path}`);
  return response;
}

function requireRef(line: CtlLine): string {
  const ref = line.args[1];
  if (!ref) throw new TypeError(`ctl ${line.args[0]} needs an instance: a name, UUID, instance-id, MAC or address`);
  return ref;
}

/** When the instance reached its boot state. */
function since(instance: ListedInstance): string {
  const access = instance.access;
  const at = instance.bootState === "stopped"
    ? instance.stoppedAt
    : access?.bootedAt ?? access?.userDataAt ?? access?.firstMetadataAt ?? instance.updatedAt;
  return at ? at.replace(/\.\d+Z$/, "Z") : "-";
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

async function list(line: CtlLine, deps: CtlDeps): Promise<number> {
  const instances = (await (await admin(deps, "/v1/instances")).json()) as ListedInstance[];
  if (line.options.has("json")) {
    deps.print(JSON.stringify(instances, null, 2));
    return 0;
  }
  const rows = [["NAME", "ADDRESS", "MAC", "INSTANCE-ID", "STATE", "SINCE"]];
  for (const instance of instances.sort((a, b) => a.name.localeCompare(b.name))) {
    rows.push([instance.name, instance.ipv4, instance.mac, instance.instanceId, instance.bootState, since(instance)]);
  }
  deps.print(formatTable(rows));
  return 0;
}

async function show(line: CtlLine, deps: CtlDeps): Promise<number> {
  const path = `/v1/instances/${encodeURIComponent(requireRef(line))}`;
  const instance = (await (await admin(deps, path)).json()) as ListedInstance & {
    access: { hostKeys?: Record<string, string>; lastMetadataAt?: string | null } | null;
  };
  if (line.options.has("json")) {
    deps.print(JSON.stringify(instance, null, 2));
    return 0;
  }
  const rows: string[][] = [
    ["name", instance.name],
    ["uuid", instance.uuid],
    ["instance-id", instance.instanceId],
    ["mac", instance.mac],
    ["address", instance.ipv4],
    ["state", `${instance.bootState} since ${since(instance)}`],
    ["vcpus", String(instance.vcpus ?? "-")],
    ["memory", instance.memoryMiB === null ? "-" : `${instance.memoryMiB} MiB`],
    ["registered", instance.createdAt],
    ["updated", instance.updatedAt],
    ["metadata fetched", instance.access?.firstMetadataAt ?? "-"],
    ["user-data fetched", instance.access?.userDataAt ?? "-"],
    ["booted", instance.access?.bootedAt ?? "-"],
  ];
  for (const [key, value] of Object.entries(instance.metadata)) rows.push([`metadata ${key}`, value]);
  for (const [key, value] of Object.entries(instance.tags)) rows.push([`tag ${key}`, value]);
  for (const key of Object.values(instance.access?.hostKeys ?? {})) rows.push(["host key", key]);
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
  const path = `/v1/instances/${encodeURIComponent(requireRef(line))}`;
  const result = await (await admin(deps, path, "DELETE")).json();
  deps.print(`deleted ${result.deleted} (${result.ipv4} released)`);
  return 0;
}

async function passThrough(path: string, deps: CtlDeps): Promise<number> {
  const text = await (await admin(deps, path)).text();
  if (text !== "") deps.print(text.endsWith("\n") ? text.slice(0, -1) : text);
  return 0;
}

async function gc(line: CtlLine, deps: CtlDeps): Promise<number> {
  const virsh = line.options.has("virsh");
  const ageText = stringOption(line, "older-than") ??
    (virsh ? null : DEFAULT_GC_AGE);
  const olderThanMs = ageText === null ? null : parseDuration(ageText);
  const connect = stringOption(line, "connect");
  const endpoint = await (deps.readEndpoint ?? readAdminEndpoint)(
    deps.configFile,
  );
  const listDomains = deps.listDomains ??
    ((uri: string | null) => virshDomainNames({ connect: uri }));
  const result = await collectGarbage(adminStore(endpoint), {
    ...(virsh ? { listDomains: () => listDomains(connect) } : {}),
    olderThanMs,
    ...(deps.now ? { now: deps.now } : {}),
    dryRun: line.options.has("dry-run"),
    force: line.options.has("force"),
  });
  const verb = result.dryRun ? "would remove" : "removed";
  for (const { instance, reason } of result.removed) {
    deps.print(
      `${verb} ${instance.name} ${instance.ipv4} ${instance.mac} ${instance.uuid}: ${reason}`,
    );
  }
  const criteria = virsh
    ? `domains libvirt no longer lists${ageText ? `, unchanged for over ${ageText}` : ""}`
    : `instances stopped for over ${ageText}`;
  deps.print(
    `gc: ${verb} ${result.removed.length} of ${result.total} instance(s) (${criteria})`,
  );
  return 0;
}

/** The admin API as a GcStore: GET /v1/instances, DELETE /v1/instances/<uuid>. */
export function adminStore(
  endpoint: AdminEndpoint,
  timeoutMs = 10_000,
): GcStore {
  const request = async (path: string, method: string) => {
    try {
      return await adminRequest(endpoint, path, {
        method,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new Error(
        `cannot reach the admin API at ${adminLocation(endpoint)} (is mdserver running?): ${(error as Error).message}`,
      );
    }
  };
  return {
    async *list() {
      const response = await request("/v1/instances", "GET");
      await expectOk(response, "GET /v1/instances");
      yield* (await response.json()) as Instance[];
    },
    async delete(uuid) {
      const response = await request(
        `/v1/instances/${encodeURIComponent(uuid)}`,
        "DELETE",
      );
      if (response.status === 404) {
        await response.body?.cancel();
        return false;
      }
      await expectOk(response, `DELETE /v1/instances/${uuid}`);
      await response.body?.cancel();
      return true;
    },
  };
}

async function expectOk(response: Response, what: string): Promise<void> {
  if (response.ok) return;
  const reason = (await response.text()).trim().split("\n")[0];
  throw new Error(
    `admin API ${what}: ${response.status} ${reason || response.statusText}`,
  );
}

function stringOption(line: CtlLine, name: string): string | null {
  const value = line.options.get(name);
  if (value === true) throw new TypeError(`option --${name} needs a value`);
  return value ?? null;
}
