/**
 * Seed images: a ConfigDrive (`config-2`) or NoCloud (`cidata`) ISO 9660
 * image with Rock Ridge and Joliet, holding what the OpenStack or NoCloud
 * API serves the instance (src/metadata/documents.ts renders both), with
 * the network configuration static, since a seed is read before the network
 * is up.
 *
 * The image is made by genisoimage, else by xorriso (`xorriso -as mkisofs`),
 * whichever is installed.
 *
 * `main.ts seed-iso` reads the instance straight from the configured KV
 * file (only reading from it; SQLite lets the running service share it),
 * so it works whether or not the service is up and needs no admin endpoint.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { Config } from "../config/config.ts";
import type { Instance } from "../store/instance.ts";
import type { Logger } from "../log/log.ts";
import { configDriveFiles, type DocumentDeps, nocloudSeedFiles } from "../guest_api/metadata/documents.ts";
import { createStore, openKv } from "../service/service.ts";
import { createTemplateRenderer } from "../guest_api/template_renderer.ts";
import { guestUrls } from "../guest_api/guest_urls.ts";

/** The kinds of seed image. */
export type SeedFormat = "configdrive" | "nocloud";

/** The volume label cloud-init looks for, per format. */
export const SEED_LABELS: Record<SeedFormat, string> = {
  configdrive: "config-2",
  nocloud: "cidata",
};

/** The programs that can write the image, in order of preference. */
export type IsoTool = "genisoimage" | "xorriso";

/** Default order in which the tools are tried. */
export const ISO_TOOLS: readonly IsoTool[] = ["genisoimage", "xorriso"];

/** Whether text names a seed format. */
export function isSeedFormat(text: string): text is SeedFormat {
  return text === "configdrive" || text === "nocloud";
}

/** The files (path → text) of an instance's seed image. */
export async function seedFiles(
  deps: DocumentDeps,
  instance: Instance,
  format: SeedFormat,
): Promise<Map<string, string>> {
  return format === "configdrive" ? await configDriveFiles(deps, instance) : await nocloudSeedFiles(deps, instance);
}

/**
 * The first of tools that runs here. Throws an Error saying what to
 * install when none does.
 */
export async function findIsoTool(
  tools: readonly IsoTool[] = ISO_TOOLS,
): Promise<IsoTool> {
  for (const tool of tools) {
    try {
      const { success } = await new Deno.Command(tool, {
        args: ["-version"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (success) return tool;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  throw new Error(
    `cannot build an ISO image: none of ${tools.join(", ")} is installed (apt-get install genisoimage, or xorriso)`,
  );
}

/** The command line that writes dir as an image labelled label to output. */
export function isoCommand(
  tool: IsoTool,
  options: { dir: string; label: string; output: string },
): string[] {
  const mkisofs = [
    "-quiet",
    "-output",
    options.output,
    "-volid",
    options.label,
    "-rational-rock",
    "-joliet",
    "-input-charset",
    "utf-8",
    options.dir,
  ];
  return tool === "xorriso" ? ["xorriso", "-as", "mkisofs", ...mkisofs] : ["genisoimage", ...mkisofs];
}

/**
 * Writes files (path → text) as an ISO image labelled label to output,
 * with the first tool that runs; returns the tool used. `options.tools`
 * narrows the tools tried, `options.tool` names one found before;
 * `options.workDir` is where the files are laid out.
 */
export async function writeIsoImage(
  files: Map<string, string>,
  options: { label: string; output: string; tools?: readonly IsoTool[]; tool?: IsoTool; workDir?: string },
): Promise<IsoTool> {
  const tool = options.tool ?? await findIsoTool(options.tools);
  // The files are laid out in workDir (default: the system's temporary folder) first.
  const dir = await Deno.makeTempDir({
    prefix: "mdserver-seed-",
    ...(options.workDir ? { dir: options.workDir } : {}),
  });
  try {
    for (const [path, text] of files) {
      if (path.startsWith("/") || path.split("/").includes("..")) {
        throw new RangeError(
          `seed file path "${path}" must stay inside the image`,
        );
      }
      await Deno.mkdir(join(dir, dirname(path)), { recursive: true });
      await Deno.writeTextFile(join(dir, path), text);
    }
    const [command, ...args] = isoCommand(tool, {
      dir,
      label: options.label,
      output: options.output,
    });
    const result = await new Deno.Command(command!, {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      const stderr = new TextDecoder().decode(result.stderr).trim();
      throw new Error(
        `${tool} could not write "${options.output}" (exit ${result.code}): ${stderr}`,
      );
    }
    return tool;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Looks an instance up by name, UUID, instance-id, MAC or address in the configured KV file. */
export async function findStoredInstance(
  config: Config,
  reference: string,
): Promise<Instance | null> {
  try {
    await Deno.stat(config.mdserver.kvFile);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(
      `no instance store at "${config.mdserver.kvFile}" (has mdserver run with this configuration?)`,
    );
  }
  const kv = await openKv(config);
  try {
    return await createStore(kv, config).find(reference);
  } finally {
    kv.close();
  }
}

/** What `seed-iso` was asked: `<instance> --format configdrive|nocloud -o FILE`. */
export interface SeedIsoRequest {
  /** The instance: name, UUID, instance-id, MAC or address. */
  instance: string;
  /** Which image to make. */
  format: SeedFormat;
  /** The image file to write. */
  output: string;
}

/** Reads `seed-iso`'s arguments (positional instance, `--format`, `-o`/`--output`); throws TypeError on misuse. */
export function parseSeedIsoArgs(
  args: string[],
  options: Map<string, string | true>,
): SeedIsoRequest {
  const positional: string[] = [];
  let output = options.get("output");
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-o") {
      output = args[++i];
      if (output === undefined) {
        throw new TypeError("option -o needs a file name");
      }
    } else positional.push(args[i]!);
  }
  const format = options.get("format");
  if (positional.length !== 1) {
    throw new TypeError(
      "seed-iso needs exactly one instance (name, UUID, instance-id, MAC or address)",
    );
  }
  if (typeof format !== "string" || !isSeedFormat(format)) {
    throw new TypeError(
      `seed-iso needs --format configdrive or --format nocloud, got "${format ?? ""}"`,
    );
  }
  if (typeof output !== "string" || output === "") {
    throw new TypeError("seed-iso needs -o FILE");
  }
  return { instance: positional[0]!, format, output };
}

/**
 * Builds the seed image of a stored instance; returns a one-line summary.
 * Throws when the instance is unknown or no ISO tool is installed.
 */
export async function buildSeedIso(
  config: Config,
  request: SeedIsoRequest,
  deps: { log: Logger; tools?: readonly IsoTool[] },
): Promise<string> {
  const instance = await findStoredInstance(config, request.instance);
  if (instance === null) {
    throw new Error(
      `no instance "${request.instance}" in "${config.mdserver.kvFile}"`,
    );
  }
  const files = await seedFiles(
    // The same request-time values the API gives this instance.
    { config, renderer: createTemplateRenderer(config, deps.log), log: deps.log, extras: guestUrls(config) },
    instance,
    request.format,
  );
  const label = SEED_LABELS[request.format];
  const tool = await writeIsoImage(files, {
    label,
    output: request.output,
    tools: deps.tools,
  });
  return `wrote ${request.output}: ${label} image for ${instance.name} (${instance.ipv4}), ${files.size} files, by ${tool}`;
}
