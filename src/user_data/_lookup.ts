/**
 * md_server's template lookup in userdata_dir: the domain's
 * userdata_prefix (or 404), else its name, else its MAC, each with every
 * suffix in order, else default_template; nothing outside userdata_dir.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { TemplateNotFoundError } from "./errors.ts";

/** Where user-data templates are looked up. */
export interface TemplateSource {
  /** md_server's `userdata_dir`. */
  userdataDir: string;
  /** md_server's `userdata_suffixes` split on ":", e.g. `["", ".yaml"]`. */
  suffixes: string[];
  /** md_server's `default_template` (absolute, or relative to `userdataDir`), or null. */
  defaultTemplate: string | null;
}

/** Who the user-data is for. */
export interface UserDataTarget {
  /** The domain's `<mdserver:userdata_prefix>` metadata, if any. */
  prefix: string | null;
  /** Domain name. */
  name: string;
  /** MAC on the managed network, lower case with colons. */
  mac: string;
}

/** A file or directory found for a target, the tree its parts must stay in, and its stat if just taken. */
export interface Found {
  path: string;
  root: string;
  info?: Deno.FileInfo;
}

/** userdata_dir as last read: its real path and entry names, valid while its stat is unchanged. */
export interface DirListing {
  signature: string;
  real: string;
  names: Set<string>;
}

/**
 * A directory changed less than this long ago (ms) may change again without
 * a new mtime or ctime (file system timestamps are coarse; Deno gives ctime
 * in whole seconds), so its listing is not kept. More than a second, so that
 * any later change moves ctime even when its mtime is set back.
 */
export const SETTLE_MS = 2_000;

/**
 * userdata_dir's entries, read again only when the directory changed, so
 * that looking up a guest's template costs one stat rather than one failed
 * file lookup per candidate name. `listing` is null when the directory does
 * not exist; `keep` says whether it may be reused (see SETTLE_MS).
 */
export function listUserdataDir(
  dir: string,
  previous: DirListing | null,
  settleMs: number,
): { listing: DirListing | null; keep: boolean } {
  // Synchronous file system calls on the request path: a local stat takes
  // microseconds, a few times less than the thread hop of an async one.
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { listing: null, keep: false };
    throw error;
  }
  if (!info.isDirectory) return { listing: null, keep: false };
  const mtime = info.mtime?.getTime() ?? 0;
  const ctime = info.ctime?.getTime() ?? mtime;
  const signature = `${info.dev}:${info.ino}:${mtime}:${ctime}`;
  if (previous?.signature === signature) return { listing: previous, keep: true };
  const names = new Set<string>();
  for (const entry of Deno.readDirSync(dir)) names.add(entry.name);
  const listing = { signature, real: Deno.realPathSync(dir), names };
  // ctime moves on every change, even one whose mtime was set back.
  return { listing, keep: Date.now() - Math.max(mtime, ctime) > settleMs };
}

/** A name usable as a file name inside userdata_dir. */
function _isSafeName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") &&
    !name.includes("\0");
}

/** The real path of dir, or null when it does not exist. */
export function realDir(dir: string): string | null {
  try {
    return Deno.realPathSync(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** path when it exists as a file or directory strictly inside root; null otherwise. */
export function insideRoot(path: string, root: string): string | null {
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    // A domain name longer than a file name can be (255 bytes) has no template.
    if ((error as { code?: string }).code === "ENAMETOOLONG") return null;
    throw error;
  }
  if (!real.startsWith(root.endsWith("/") ? root : `${root}/`)) return null;
  const info = Deno.statSync(real);
  return info.isFile || info.isDirectory ? path : null;
}

/** The first `<dir>/<name><suffix>` that exists inside dir; only names the listing holds are looked at. */
function _tryName(
  source: TemplateSource,
  listing: DirListing | null,
  name: string,
): Found | null {
  if (listing === null || !_isSafeName(name)) return null;
  for (const suffix of source.suffixes) {
    if (!listing.names.has(name + suffix)) continue;
    const path = insideRoot(join(source.userdataDir, name + suffix), listing.real);
    if (path !== null) return { path, root: listing.real };
  }
  return null;
}

/** md_server's lookup: prefix (or 404), else name, MAC, default_template; null means built-in. */
export function findUserData(
  source: TemplateSource,
  target: UserDataTarget,
  listing: DirListing | null,
): Found | null {
  if (target.prefix !== null) {
    const found = _tryName(source, listing, target.prefix);
    if (found === null) {
      throw new TemplateNotFoundError(
        `No user-data template for userdata_prefix "${target.prefix}" in "${source.userdataDir}"`,
      );
    }
    return found;
  }
  for (const name of [target.name, target.mac]) {
    const found = _tryName(source, listing, name);
    if (found !== null) return found;
  }
  if (source.defaultTemplate !== null && source.defaultTemplate !== "") {
    // The operator's own setting: may live outside userdata_dir. Missing
    // falls through to the built-in template, as in md_server.
    const path = resolve(source.userdataDir, source.defaultTemplate);
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    // Only a directory's parts are checked against its real path.
    const root = info.isDirectory ? realDir(path) : path;
    if (root !== null) return { path, root, info };
  }
  return null;
}
