/**
 * Seed images as the operator makes them: `main.ts seed-iso` (its own
 * permission set, the configuration naming the ports the service bound,
 * the KV file the running service holds), extracted with xorriso the way a
 * guest's mount shows them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type TestService, writeClientConfig } from "./_harness.ts";
import { requireTool } from "./_requirements.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The two image formats of `seed-iso`. */
export type SeedFormat = "configdrive" | "nocloud";

/** Null when xorriso (to write and to extract images) is installed, else the reason (a failure in CI). */
export function seedImageMissing(): Promise<string | null> {
  return requireTool("xorriso", ["/usr/bin/xorriso"]);
}

async function run(command: string, args: string[], cwd?: string): Promise<string> {
  const output = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const decoder = new TextDecoder();
  assert.equal(output.code, 0, `${command} ${args.join(" ")}: ${decoder.decode(output.stderr)}`);
  return decoder.decode(output.stdout);
}

/**
 * Writes `instance`'s image in `format` with `seed-iso` against the service's
 * KV file (start it with `kvFile: true`) and returns the image's files,
 * path → text.
 */
export async function seedImageFiles(
  t: TestService,
  instance: string,
  format: SeedFormat,
): Promise<Map<string, string>> {
  const work = await Deno.makeTempDir({ dir: t.dir, prefix: `seed-${format}-` });
  const iso = join(work, `${format}.iso`);
  const config = await writeClientConfig(t);
  await run(
    Deno.execPath(),
    ["run", "-P=seed-iso", "main.ts", "seed-iso", instance, "--format", format, "-o", iso, "--config", config],
    ROOT,
  );
  return await extractSeedImage(iso, join(work, "files"));
}

/**
 * The files of an image (path → text) as a guest's mount shows them,
 * extracted into dir (which must not exist yet).
 */
export async function extractSeedImage(iso: string, dir: string): Promise<Map<string, string>> {
  await run("xorriso", ["-osirrox", "on", "-indev", iso, "-extract", "/", dir]);
  // Rock Ridge makes everything read-only; let the service's cleanup remove it.
  await run("chmod", ["-R", "u+w", dir]);
  const files = new Map<string, string>();
  const walk = async (sub: string) => {
    for await (const entry of Deno.readDir(join(dir, sub))) {
      const path = sub === "" ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else files.set(path, await Deno.readTextFile(join(dir, path)));
    }
  };
  await walk("");
  return files;
}
