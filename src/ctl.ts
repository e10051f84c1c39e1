/**
 * `main.ts ctl …`: the operator's commands, run against the running service
 * through its admin API (so every change goes through the service and its
 * dnsmasq records follow).
 *
 *   ctl gc [--virsh [--connect URI]] [--older-than 7d] [--dry-run] [--force]
 *   ctl smbios [DOMAIN] [--datasource nocloud|openstack]   (src/smbios.ts; reads only the configuration)
 *
 * @module
 */

import { adminBaseUrl, type AdminEndpoint, adminRequest, readAdminEndpoint } from "./admin_endpoint.ts";
import { collectGarbage, type GcStore, parseDuration, virshDomainNames } from "./gc.ts";
import type { Instance } from "./instance.ts";
import { runSmbios, SMBIOS_USAGE } from "./smbios.ts";

/** The parts of a parsed command line ctl reads (main.ts's CommandLine fits). */
export interface CtlLine {
  /** `args[0]` is the ctl subcommand. */
  args: string[];
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
  now?: () => Date;
  readEndpoint?: (file: string) => Promise<AdminEndpoint>;
}

/** Usage of the ctl commands. */
export const CTL_USAGE = `usage: mdserver ctl <command> [--config FILE]

commands:
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
      const where = endpoint.socket ? `unix:${endpoint.socket} or ${adminBaseUrl(endpoint)}` : adminBaseUrl(endpoint);
      throw new Error(
        `cannot reach the admin API at ${where} (is mdserver running?): ${(error as Error).message}`,
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
