/**
 * A small tmpfs for tests of a full disk: mounted on a fresh folder (root
 * only), filled to the last byte on demand, and unmounted after.
 *
 * @module
 */

import { join } from "node:path";

/** A mounted tmpfs. */
export interface SmallTmpfs {
  /** Where it is mounted. */
  path: string;
  /** Writes a filler file until the file system is full. */
  fill(): Promise<void>;
  /** Removes the filler file: space returns. */
  free(): Promise<void>;
  /** Unmounts it and removes the folder. */
  close(): Promise<void>;
}

const PAGE = 4096;

/** Mounts a tmpfs of `sizeKiB` KiB on a new folder under /tmp. */
export async function mountSmallTmpfs(sizeKiB: number): Promise<SmallTmpfs> {
  const path = await Deno.makeTempDir({ prefix: "mdserver-full-" });
  await run("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0755`, "tmpfs", path]);
  const filler = join(path, ".filler");
  return {
    path,
    async fill() {
      const file = await Deno.open(filler, { create: true, append: true });
      try {
        const page = new Uint8Array(PAGE);
        // Bounded: one page more than the file system holds.
        for (let i = 0; i <= (sizeKiB * 1024) / PAGE; i++) {
          try {
            await file.write(page);
          } catch (error) {
            if ((error as { code?: string }).code === "ENOSPC") return;
            throw error;
          }
        }
        throw new Error(`tmpfs ${path} of ${sizeKiB} KiB did not fill`);
      } finally {
        file.close();
      }
    },
    async free() {
      await Deno.remove(filler).catch(() => {});
    },
    async close() {
      await run("umount", [path]).catch(() => run("umount", ["-l", path]));
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).output();
  if (code !== 0) throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr).trim()}`);
}
