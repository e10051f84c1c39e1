/**
 * The hook's part of a config drive: after an upload that built the
 * domain's image, the hook (root, under libvirtd, before QEMU starts)
 * gives `[configdrive] dir/<uuid>.iso` to the user and group QEMU runs as
 * (`[configdrive] qemu_user`), mode 0640. The service runs unprivileged and
 * cannot chown; the image is then QEMU's to read without QEMU's user being
 * in the `mdserver` group, which can read the store.
 *
 * The folder belongs to the service, so nothing in it is trusted: a
 * symbolic link is refused (lstat, then O_NOFOLLOW, then the descriptor's
 * inode compared with lstat's, since Deno resolves links for its permission
 * checks), and the file is changed through its descriptor only if it is a
 * regular file with one link, owned by the folder's owner (or already by
 * QEMU's user). Imports: the hook's own INI reading, and node:fs (for
 * O_NOFOLLOW and fchown) only when there is an image to give.
 *
 * @module
 */

import { includedFiles, parentDir, resolvePath } from "../config/files.ts";
import { parseIni } from "../config/ini.ts";
import { type QemuAccount, qemuAccount } from "./_qemu_account.ts";

/** `[configdrive] dir` when the configuration does not set it (as src/config/schema.ts). */
export const DEFAULT_CONFIG_DRIVE_DIR = "/var/lib/mdserver/seeds";
/** `[configdrive] qemu_conf` when the configuration does not set it. */
export const DEFAULT_QEMU_CONF = "/etc/libvirt/qemu.conf";
/** The mode the image keeps: QEMU's user reads it, its group too, nobody else. */
export const CONFIG_DRIVE_MODE = 0o640;

/** What the hook reads from the configuration for the image's owner. */
export interface OwnerSettings {
  /** `[configdrive] dir`: where the images are. */
  dir: string;
  /** `[configdrive] qemu_user`: `auto`, `NAME[:GROUP]`, or `none` (leave the owner alone). */
  qemuUser: string;
  /** `[configdrive] qemu_conf`: libvirt's qemu driver configuration, read by `auto`. */
  qemuConf: string;
}

/** Reads `[configdrive] dir`, `qemu_user` and `qemu_conf` from a configuration file and its includes. */
export async function readOwnerSettings(file: string): Promise<OwnerSettings> {
  const values = new Map<string, { value: string; file: string }>();
  const take = (text: string, path: string) => {
    for (const entry of parseIni(text, path).entries) {
      values.set(`${entry.section}.${entry.key}`, { value: entry.value.trim(), file: path });
    }
  };
  take(await Deno.readTextFile(file), file);
  const included = await includedFiles(file, {
    directories: values.get("_include_.directories")?.value,
    files: values.get("_include_.files")?.value,
  }, {
    listDirectory: async (path) => {
      const names: string[] = [];
      for await (const entry of Deno.readDir(path)) names.push(entry.name);
      return names;
    },
    acceptFile: () => Promise.resolve(true),
  }).catch(() => []);
  for (const path of included) {
    const text = await Deno.readTextFile(path).catch(() => null);
    if (text !== null) take(text, path);
  }
  const path = (key: string, fallback: string) => {
    const entry = values.get(`configdrive.${key}`);
    return entry && entry.value !== "" ? resolvePath(parentDir(entry.file), entry.value) : fallback;
  };
  return {
    dir: path("dir", DEFAULT_CONFIG_DRIVE_DIR),
    qemuUser: values.get("configdrive.qemu_user")?.value || "auto",
    qemuConf: path("qemu_conf", DEFAULT_QEMU_CONF),
  };
}

/** QEMU's account for the settings; null for `qemu_user = none`. Throws naming what cannot be read or resolved. */
export async function readQemuAccount(settings: OwnerSettings): Promise<QemuAccount | null> {
  if (settings.qemuUser === "none") return null;
  const qemuConf = settings.qemuUser === "auto"
    ? await Deno.readTextFile(settings.qemuConf).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    })
    : null;
  const [passwd, group] = await Promise.all([Deno.readTextFile("/etc/passwd"), Deno.readTextFile("/etc/group")]);
  return qemuAccount(settings.qemuUser, { qemuConf, passwd, group });
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Gives the image of the domain with uuid to account, mode 0640. Throws
 * (with the path and the reason) for anything but a regular file with one
 * link owned by the folder's owner or by account already.
 */
export async function chownConfigDrive(dir: string, uuid: string, account: QemuAccount): Promise<void> {
  if (!UUID_RE.test(uuid)) throw new TypeError(`"${uuid}" is not a domain UUID`);
  // Loaded only here: Node's compatibility layer costs every hook run tens of milliseconds at start.
  const { closeSync, constants, fchmodSync, fchownSync, fstatSync, openSync } = await import("node:fs");
  const folder = Deno.lstatSync(dir);
  if (!folder.isDirectory) throw new TypeError(`${dir} is not a folder`);
  const path = `${dir}/${uuid}.iso`;
  const seen = Deno.lstatSync(path);
  if (seen.isSymlink) throw new TypeError(`${path} is a symbolic link`);
  if (!seen.isFile) throw new TypeError(`${path} is not a regular file`);
  let fd: number;
  try {
    // O_NOFOLLOW; O_NONBLOCK: a FIFO put there meanwhile must not hold the hook.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    if ((error as { code?: string }).code === "ELOOP") throw new TypeError(`${path} is a symbolic link`);
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    // Deno resolves a link itself to check a scoped permission, so O_NOFOLLOW alone is not enough:
    // the file opened must be the one lstat saw (both were alive then, so their inodes differ).
    if (stat.ino !== seen.ino || stat.dev !== seen.dev) throw new TypeError(`${path} was replaced while opened`);
    if (!stat.isFile()) throw new TypeError(`${path} is not a regular file`);
    if (stat.nlink !== 1) throw new TypeError(`${path} has ${stat.nlink} links`);
    if (stat.uid !== folder.uid && stat.uid !== account.uid) {
      throw new TypeError(`${path} is owned by uid ${stat.uid}, not by its folder's owner`);
    }
    fchownSync(fd, account.uid, account.gid);
    fchmodSync(fd, CONFIG_DRIVE_MODE);
  } finally {
    closeSync(fd);
  }
}

/** The domain UUID of libvirt's domain XML (`<uuid>` follows `<name>`, before any metadata), lower case. */
export function domainUuid(xml: string): string | null {
  return /<uuid>\s*([0-9a-fA-F-]{36})\s*<\/uuid>/.exec(xml)?.[1]?.toLowerCase() ?? null;
}

/**
 * After an upload answered with body: when the service built the domain's
 * config drive, gives it to QEMU's user. Resolves to null, or to why the
 * owner was not changed (the hook's one line); never throws.
 */
export async function ownConfigDrive(configFile: string, xml: string, body: string): Promise<string | null> {
  try {
    if ((JSON.parse(body) as { config_drive?: unknown }).config_drive !== "built") return null;
  } catch {
    return null;
  }
  try {
    const uuid = domainUuid(xml);
    if (uuid === null) return "config drive owner not changed: no <uuid> in the domain XML";
    const settings = await readOwnerSettings(configFile);
    const account = await readQemuAccount(settings);
    if (account !== null) await chownConfigDrive(settings.dir, uuid, account);
    return null;
  } catch (error) {
    return `config drive owner not changed: ${error instanceof Error ? error.message : String(error)}`;
  }
}
