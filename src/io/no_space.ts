/**
 * Telling a full disk from other failures by the operating system's error
 * code (ENOSPC, EDQUOT), and finding out whether a folder's file system has
 * room, for stores (Deno KV) that do not say why a write failed.
 *
 * @module
 */

/** Whether a file-system error says the disk or the quota is full. */
export function isNoSpace(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** Size of the probe: more than the few pages a database commit needs. */
const PROBE_BYTES = 64 * 1024;

/**
 * Whether `dir`'s file system is full: writes (and removes) a 64 KiB
 * dot-file there; true when the write fails for want of space, false when
 * it succeeds or fails for any other reason.
 */
export async function folderIsFull(dir: string): Promise<boolean> {
  const probe = `${dir}/.space-probe-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeFile(probe, new Uint8Array(PROBE_BYTES));
    return false;
  } catch (error) {
    return isNoSpace(error);
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}
