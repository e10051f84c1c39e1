/**
 * Which files make up a configuration: the default main file and md_server's
 * `[_include_]` rules. Shared by `loadConfig` and the libvirt hook's reading
 * of the admin endpoint, so it imports nothing and resolves paths itself
 * (the hook starts a process per domain start and must stay small).
 *
 * md_server's rules: `directories` first, each one's `*.conf` (not
 * dot-files) in lexical order, then `files`, left to right; both are
 * `:`-separated lists of paths relative to the main file's folder.
 *
 * @module
 */

/** The configuration file used when neither `--config` nor MDSERVER_CONFIG is given. */
export const DEFAULT_CONFIG_FILE = "/etc/mdserver/mdserver.conf";

/** The two `[_include_]` keys, as written. */
export interface IncludeDirectives {
  /** `[_include_] directories`. */
  directories?: string | undefined;
  /** `[_include_] files`. */
  files?: string | undefined;
}

/** How a caller looks at what the include rules name. */
export interface IncludeLister {
  /** The file names in an include directory, or null to skip it (missing, not a directory…). */
  listDirectory(path: string, entry: string): Promise<string[] | null>;
  /** Whether a file named in `files` is read; false skips it. */
  acceptFile(path: string, entry: string): Promise<boolean>;
}

/** The files a main file includes, in the order they apply. */
export async function includedFiles(
  mainFile: string,
  include: IncludeDirectives,
  lister: IncludeLister,
): Promise<string[]> {
  const base = parentDir(mainFile);
  const included: string[] = [];
  for (const entry of splitList(include.directories)) {
    const path = resolvePath(base, entry);
    const names = await lister.listDirectory(path, entry);
    if (names === null) continue;
    names.filter((name) => name.endsWith(".conf") && !name.startsWith("."))
      .sort()
      .forEach((name) => included.push(resolvePath(path, name)));
  }
  for (const entry of splitList(include.files)) {
    const path = resolvePath(base, entry);
    if (await lister.acceptFile(path, entry)) included.push(path);
  }
  return included;
}

/** A `:`-separated list, trimmed, empty items dropped. */
function splitList(value: string | undefined): string[] {
  return (value ?? "").split(":").map((item) => item.trim()).filter((item) => item !== "");
}

/** The folder of a path ("." for a bare name). */
export function parentDir(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/**
 * A path relative to a folder; an absolute result has "." and ".." folded,
 * since permission checks compare exact paths.
 */
export function resolvePath(base: string, path: string): string {
  const joined = path.startsWith("/") ? path : base === "/" ? `/${path}` : `${base}/${path}`;
  if (!joined.startsWith("/")) return joined;
  const parts: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}
