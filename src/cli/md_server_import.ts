/**
 * Moving from md_server: its JSON database (db_file) in both of its
 * formats — a plain list of entries (before 0.6) and `{metadata, entries}` —
 * becomes instances with the same names, UUIDs, MACs and addresses, so
 * running guests keep their leases.
 *
 * md_server answered `instance-id` with `i-<address>`; an imported instance
 * keeps that id by default, so cloud-init on a running guest does not take
 * the move for a new instance (and regenerate its SSH host keys).
 *
 * @module
 */

import { parseIpv4 } from "../ipam/ipv4.ts";
import { RegistrationError } from "../store/errors.ts";
import type { InstanceStore } from "../store/store.ts";

/** One md_server database entry, as much of it as mdserver uses. */
export interface MdServerEntry {
  /** The domain name. */
  domain_name: string;
  /** The domain UUID. */
  domain_uuid: string;
  /** md_server's metadata of the domain. */
  domain_metadata: Record<string, string>;
  /** The MAC on md_server's network. */
  mds_mac: string;
  /** The address md_server gave it, or null. */
  mds_ipv4: string | null;
}

/** Parses md_server's db_file; throws SyntaxError/TypeError naming the entry at fault. */
export function parseMdServerDatabase(text: string, file = "db_file"): MdServerEntry[] {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`Cannot parse md_server database "${file}": ${(error as Error).message}`);
  }
  let entries: unknown;
  if (Array.isArray(document)) entries = document;
  else if (isObject(document) && Array.isArray(document.entries)) entries = document.entries;
  else {
    throw new TypeError(
      `"${file}" is neither of md_server's database formats (a list of entries, or {metadata, entries})`,
    );
  }
  return (entries as unknown[]).map((entry, index) => checkEntry(entry, `${file}: entry ${index + 1}`));
}

function checkEntry(entry: unknown, where: string): MdServerEntry {
  if (!isObject(entry)) throw new TypeError(`${where} is not an object`);
  const text = (key: string, pattern: RegExp, what: string): string => {
    const value = entry[key];
    if (typeof value !== "string" || !pattern.test(value)) {
      throw new TypeError(`${where}: ${key} ${JSON.stringify(value ?? null)} is not ${what}`);
    }
    return value;
  };
  const name = text("domain_name", /^[^/\0]{1,253}$/, "a domain name");
  const uuid = text("domain_uuid", /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i, "a UUID");
  const mac = text("mds_mac", /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i, "a MAC address");
  const ipv4 = entry.mds_ipv4;
  if (ipv4 !== null && ipv4 !== undefined && (typeof ipv4 !== "string" || parseIpv4(ipv4) === null)) {
    throw new TypeError(`${where}: mds_ipv4 ${JSON.stringify(ipv4)} is not an IPv4 address`);
  }
  const metadata: Record<string, string> = {};
  if (isObject(entry.domain_metadata)) {
    for (const [key, value] of Object.entries(entry.domain_metadata)) {
      if (typeof value === "string") metadata[key] = value;
    }
  }
  const hex = uuid.replaceAll("-", "").toLowerCase();
  return {
    domain_name: name,
    domain_uuid: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    domain_metadata: metadata,
    mds_mac: mac.toLowerCase(),
    mds_ipv4: typeof ipv4 === "string" ? ipv4 : null,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What happened to one entry. */
export interface ImportOutcome {
  /** The domain name. */
  name: string;
  /** The address it has now, or null when it failed. */
  ipv4: string | null;
  /** Its instance-id, or null when it failed. */
  instanceId: string | null;
  /** What happened to the entry. */
  result: "imported" | "updated" | "failed";
  /** Why it failed. */
  reason?: string;
}

/** The import reports progress after this many entries. */
export const IMPORT_PROGRESS_EVERY = 500;

/** Imports entries one by one (each atomically); a failing entry is reported, the rest go on. */
export async function importMdServerEntries(
  store: InstanceStore,
  entries: MdServerEntry[],
  options: { keepInstanceIds?: boolean; progress?: (done: number, total: number) => void } = {},
): Promise<ImportOutcome[]> {
  const keepIds = options.keepInstanceIds ?? true;
  const outcomes: ImportOutcome[] = [];
  for (const entry of entries) {
    if (outcomes.length > 0 && outcomes.length % IMPORT_PROGRESS_EVERY === 0) {
      options.progress?.(outcomes.length, entries.length);
    }
    try {
      const { instance, created } = await store.upsert(
        {
          uuid: entry.domain_uuid,
          name: entry.domain_name,
          mac: entry.mds_mac,
          vcpus: null,
          memoryMiB: null,
          metadata: entry.domain_metadata,
          tags: {},
        },
        {
          ...(entry.mds_ipv4 ? { ipv4: entry.mds_ipv4 } : {}),
          ...(keepIds && entry.mds_ipv4 ? { instanceId: `i-${entry.mds_ipv4}` } : {}),
        },
      );
      outcomes.push({
        name: instance.name,
        ipv4: instance.ipv4,
        instanceId: instance.instanceId,
        result: created ? "imported" : "updated",
      });
    } catch (error) {
      if (!(error instanceof RegistrationError)) throw error;
      outcomes.push({
        name: entry.domain_name,
        ipv4: entry.mds_ipv4,
        instanceId: null,
        result: "failed",
        reason: error.message,
      });
    }
  }
  return outcomes;
}
