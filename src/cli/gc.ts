/**
 * Garbage collection of instances whose domains are gone: by comparing with
 * libvirt's list of domains (`virsh list --all --name`), or by age, for
 * instances the hook reported stopped long enough ago. Removing an instance
 * releases its address; through the admin API its dnsmasq records go too.
 *
 * @module
 */

import type { Instance } from "../store/instance.ts";

/** What gc needs of an instance store: the InstanceStore, or the admin API. */
export interface GcStore {
  /** Every instance. */
  list(): AsyncIterable<Instance>;
  /** Removes one instance; false when it was already gone. */
  delete(uuid: string): Promise<boolean>;
  /** Removes many in one go; those removed. When absent, delete() runs for each. */
  deleteMany?(uuids: string[]): Promise<{ uuid: string }[]>;
}

/** Which instances to remove. */
export interface GcCriteria {
  /** Names of the domains libvirt knows; an instance whose name is not among them goes. null: do not compare. */
  domains: ReadonlySet<string> | null;
  /**
   * Without `domains`: instances stopped for longer than this go.
   * With `domains`: only gone domains whose last change is older than this go.
   */
  olderThanMs: number | null;
  /** The time ages are measured at. */
  now: Date;
}

/** One instance chosen for removal and why. */
export interface GcCandidate {
  /** The instance that would go. */
  instance: Instance;
  /** Why it would go. */
  reason: string;
}

/** Chooses the instances to remove; pure. */
export function selectGarbage(
  instances: Iterable<Instance>,
  criteria: GcCriteria,
): GcCandidate[] {
  if (criteria.domains === null && criteria.olderThanMs === null) {
    throw new TypeError("gc needs a domain list or an age");
  }
  const chosen: GcCandidate[] = [];
  for (const instance of instances) {
    if (criteria.domains !== null) {
      if (criteria.domains.has(instance.name)) continue;
      const since = instance.stoppedAt ?? instance.updatedAt;
      if (
        criteria.olderThanMs !== null &&
        !olderThan(since, criteria.olderThanMs, criteria.now)
      ) continue;
      chosen.push({ instance, reason: "no such domain in libvirt" });
    } else if (instance.state === "stopped" && instance.stoppedAt !== null) {
      if (!olderThan(instance.stoppedAt, criteria.olderThanMs!, criteria.now)) {
        continue;
      }
      chosen.push({
        instance,
        reason: `stopped since ${instance.stoppedAt} (${
          formatDuration(
            criteria.now.getTime() - Date.parse(instance.stoppedAt),
          )
        })`,
      });
    }
  }
  return chosen;
}

/** Options of collectGarbage. */
export interface GcOptions {
  /** Lists the names of every domain libvirt knows (running or not); omit to go by age only. */
  listDomains?: () => Promise<string[]>;
  /** Remove instances stopped longer than this; null: no age limit. */
  olderThanMs?: number | null;
  /** Clock; default the system clock. */
  now?: () => Date;
  /** Report without removing. */
  dryRun?: boolean;
  /** Go on even when libvirt lists no domain at all while instances exist. */
  force?: boolean;
  /** Told how many of how many were removed, after each batch. */
  progress?: (done: number, total: number) => void;
}

/** Instances one deleteMany() call removes. */
export const GC_BATCH = 500;

/** What collectGarbage did. */
export interface GcResult {
  /** Instances examined. */
  total: number;
  /** Chosen for removal (and removed, unless dry run). */
  removed: GcCandidate[];
  /** Whether nothing was removed (--dry-run). */
  dryRun: boolean;
}

/**
 * Removes the instances selectGarbage chooses. An empty domain list while
 * instances exist is refused unless `force`: it more often means virsh
 * talked to the wrong libvirt (qemu:///session) than that every domain is gone.
 */
export async function collectGarbage(
  store: GcStore,
  options: GcOptions = {},
): Promise<GcResult> {
  const instances: Instance[] = [];
  for await (const instance of store.list()) instances.push(instance);
  let domains: Set<string> | null = null;
  if (options.listDomains) {
    domains = new Set(await options.listDomains());
    if (domains.size === 0 && instances.length > 0 && !options.force) {
      throw new Error(
        `libvirt listed no domains while mdserver holds ${instances.length} instance(s); ` +
          `if that is right, rerun with --force (is virsh talking to qemu:///system?)`,
      );
    }
  }
  const olderThanMs = options.olderThanMs ?? null;
  const candidates = selectGarbage(instances, {
    domains,
    olderThanMs,
    now: (options.now ?? (() => new Date()))(),
  });
  const removed: GcCandidate[] = [];
  if (options.dryRun) removed.push(...candidates);
  else if (store.deleteMany) {
    for (let start = 0; start < candidates.length; start += GC_BATCH) {
      const batch = candidates.slice(start, start + GC_BATCH);
      const gone = new Set(
        (await store.deleteMany(batch.map((candidate) => candidate.instance.uuid))).map((instance) => instance.uuid),
      );
      removed.push(...batch.filter((candidate) => gone.has(candidate.instance.uuid)));
      options.progress?.(start + batch.length, candidates.length);
    }
  } else {
    for (const [i, candidate] of candidates.entries()) {
      if (await store.delete(candidate.instance.uuid)) removed.push(candidate);
      if ((i + 1) % GC_BATCH === 0) options.progress?.(i + 1, candidates.length);
    }
  }
  return { total: instances.length, removed, dryRun: options.dryRun ?? false };
}

/** Runs a command and returns its standard output; what virshDomainNames uses to run virsh. */
export type CommandRunner = (
  program: string,
  args: string[],
) => Promise<string>;

/** Runs a program with Deno.Command; throws with its stderr when it fails. */
export async function runCommand(
  program: string,
  args: string[],
): Promise<string> {
  const output = await new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decoder = new TextDecoder();
  if (!output.success) {
    const reason = decoder.decode(output.stderr).trim().split("\n")[0] ||
      `exit code ${output.code}`;
    throw new Error(`${program} ${args.join(" ")} failed: ${reason}`);
  }
  return decoder.decode(output.stdout);
}

/** The names of every domain (running or not) from `virsh list --all --name`. */
export async function virshDomainNames(
  options: { connect?: string | null; run?: CommandRunner } = {},
): Promise<string[]> {
  const args = options.connect ? ["--connect", options.connect] : [];
  args.push("list", "--all", "--name");
  const text = await (options.run ?? runCommand)("virsh", args);
  return text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
}

const UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parses a duration such as "7d", "12h", "1d12h", "90m" or "30s" to milliseconds; throws TypeError. */
export function parseDuration(text: string): number {
  const value = text.trim().toLowerCase();
  if (!/^(\d+[smhdw])+$/.test(value)) {
    throw new TypeError(
      `Cannot parse duration "${text}": expected a number and a unit (s, m, h, d, w), e.g. "7d" or "1d12h"`,
    );
  }
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+)([smhdw])/g)) {
    total += Number(amount) * UNITS[unit!]!;
  }
  return total;
}

/** Formats milliseconds as the largest whole units, e.g. "9d 4h". */
export function formatDuration(ms: number): string {
  const parts: string[] = [];
  let rest = Math.max(0, Math.floor(ms / 1000)) * 1000;
  for (const unit of ["d", "h", "m", "s"]) {
    const size = UNITS[unit]!;
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.length > 0 ? parts.join(" ") : "0s";
}

function olderThan(iso: string, ageMs: number, now: Date): boolean {
  const at = Date.parse(iso);
  return Number.isFinite(at) && now.getTime() - at > ageMs;
}
