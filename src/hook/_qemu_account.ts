/**
 * The user and group QEMU runs as, by the rules of libvirt's qemu driver:
 * `user =` and `group =` of the host's qemu.conf (commented-out lines do
 * not count), else the built-in default, each a name, a number, or `+N`
 * for a number that is never taken as a name. Names are resolved to ids
 * by reading /etc/passwd and /etc/group: Deno has no getpwnam.
 *
 * @module
 */

/** A user and group as numeric ids, with the names they came from (for messages). */
export interface QemuAccount {
  /** The user's id. */
  uid: number;
  /** The group's id. */
  gid: number;
  /** `user:group` as given, for messages. */
  label: string;
}

/**
 * libvirt's built-in default when qemu.conf sets no user: Debian and Ubuntu
 * build it as `libvirt-qemu`, Fedora, RHEL, SUSE and Arch as `qemu`; the first
 * that exists on the host is taken, with the group of the same name.
 */
export const DEFAULT_QEMU_USERS: readonly string[] = ["libvirt-qemu", "qemu"];

/** The `user` and `group` values of a qemu.conf text; null for one that is not set. */
export function qemuConfAccount(text: string): { user: string | null; group: string | null } {
  const value = (key: string): string | null => {
    let found: string | null = null;
    for (const line of text.split("\n")) {
      // libvirt's conf syntax: key = "string"; a later setting wins, `#` starts a comment.
      const match = new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`).exec(line);
      if (match) found = match[1]!;
    }
    return found;
  };
  return { user: value("user"), group: value("group") };
}

/** One colon-separated database (/etc/passwd, /etc/group) as name → fields. */
function databaseEntries(text: string): Map<string, string[]> {
  const entries = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 3 || fields[0] === "" || line.startsWith("#")) continue;
    if (!entries.has(fields[0]!)) entries.set(fields[0]!, fields);
  }
  return entries;
}

/** A name or id as libvirt reads it: `+N` is the id N; a name first, then digits as an id. */
function resolveId(spec: string, entries: Map<string, string[]>, what: string): number {
  if (/^\+\d+$/.test(spec)) return Number(spec.slice(1));
  const entry = entries.get(spec);
  if (entry) return Number(entry[2]);
  if (/^\d+$/.test(spec)) return Number(spec);
  throw new RangeError(`no ${what} "${spec}" in /etc/${what === "user" ? "passwd" : "group"}`);
}

/** The texts an account is resolved from. */
export interface AccountSources {
  /** /etc/libvirt/qemu.conf, or null when there is none. */
  qemuConf: string | null;
  /** /etc/passwd. */
  passwd: string;
  /** /etc/group. */
  group: string;
}

/**
 * QEMU's account for `[configdrive] qemu_user`: `auto` reads qemu.conf
 * (then libvirt's default for what it leaves unset); `NAME:GROUP` is taken
 * as is; `NAME` alone takes the user's primary group. Throws RangeError
 * naming what cannot be resolved.
 */
export function qemuAccount(setting: string, sources: AccountSources): QemuAccount {
  const users = databaseEntries(sources.passwd);
  const groups = databaseEntries(sources.group);
  if (setting !== "auto") {
    const [user, group] = setting.split(":", 2) as [string, string | undefined];
    const uid = resolveId(user, users, "user");
    if (group !== undefined) return { uid, gid: resolveId(group, groups, "group"), label: setting };
    const primary = users.get(user)?.[3];
    if (primary === undefined) throw new RangeError(`user "${user}" has no primary group here: write "${user}:GROUP"`);
    return { uid, gid: Number(primary), label: `${user}:${primary}` };
  }
  const conf = sources.qemuConf === null ? { user: null, group: null } : qemuConfAccount(sources.qemuConf);
  const fallback = DEFAULT_QEMU_USERS.find((name) => users.has(name)) ?? null;
  const user = conf.user ?? fallback;
  const group = conf.group ?? fallback;
  if (user === null || group === null) {
    throw new RangeError(
      `qemu.conf sets no ${user === null ? "user" : "group"} and none of ${DEFAULT_QEMU_USERS.join(", ")} exists`,
    );
  }
  return { uid: resolveId(user, users, "user"), gid: resolveId(group, groups, "group"), label: `${user}:${group}` };
}
