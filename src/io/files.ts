/**
 * Writing files so that a reader sees the old content or the new, never
 * half of either: through a temporary dot-file in the same folder and a
 * rename over the target.
 *
 * @module
 */

/** Options of writeFileAtomic. */
export interface AtomicWriteOptions {
  /** File mode of the new file; default 0o644. */
  mode?: number;
}

/** Writes a file through a dot-file in the same folder and a rename, so readers see old or new, never half. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "" : path.slice(0, slash + 1);
  const name = path.slice(slash + 1);
  // A dot-file: dnsmasq skips those in the folders it watches.
  const temporary = `${dir}.${name}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const mode = options.mode ?? 0o644;
  try {
    if (typeof data === "string") await Deno.writeTextFile(temporary, data, { mode });
    else await Deno.writeFile(temporary, data, { mode });
    // The umask may have narrowed the mode given at creation.
    await Deno.chmod(temporary, mode);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** What writing a file did. */
export type WriteOutcome = "created" | "changed" | "unchanged";

/** Writes a text file atomically unless it already holds `text`. */
export async function updateFile(path: string, text: string): Promise<WriteOutcome> {
  let current: string | null = null;
  try {
    current = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (current === text) return "unchanged";
  await writeFileAtomic(path, text);
  return current === null ? "created" : "changed";
}

/** Removes a file; false when it was not there. */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
