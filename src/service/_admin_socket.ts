/**
 * The admin API's unix socket: its path made ready without ever deleting
 * anything but a stale socket, and the mode that leaves it to root and the
 * service's group.
 *
 * @module
 */

import { dirname } from "node:path";

/** The socket's mode: owner and group (the service's, `mdserver`) may connect; nobody else. */
export const ADMIN_SOCKET_MODE = 0o660;

/**
 * Makes `path` free for a new socket: absent is fine, a socket nobody
 * answers on is removed; anything else (a file, a folder, a symlink, a
 * socket another server answers on) is refused and left alone.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new Error(
      `[admin] socket "${path}" exists and is not a socket; not replacing it (remove it or change socket)`,
    );
  }
  if (await answers(path)) {
    throw new Error(`[admin] socket "${path}" is in use by another process`);
  }
  await Deno.remove(path);
}

/** Sets the socket's mode once it is listening (created under the umask, narrower still). */
export async function restrictSocket(path: string): Promise<void> {
  await Deno.chmod(path, ADMIN_SOCKET_MODE);
}

async function answers(path: string): Promise<boolean> {
  try {
    const connection = await Deno.connect({ transport: "unix", path });
    connection.close();
    return true;
  } catch {
    return false;
  }
}
