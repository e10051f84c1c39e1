/**
 * Loading a configuration: the main file and its `[_include_]`s read,
 * defaults applied, every value checked. Every error names the file, the
 * section and the key, and a configuration with any error is never used.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "node:path";
import { buildConfig } from "./build.ts";
import type { Config } from "./config.ts";
import { includedFiles } from "./files.ts";
import { type IniEntry, parseIni } from "./ini.ts";
import { ConfigError, type ConfigProblem, located } from "./problems.ts";
import { nearestWord } from "./nearest.ts";
import { PATH_KEYS, schema } from "./schema.ts";

/** A relative default_template names a file of userdata_dir (md_server's meaning; vendordata_template, new, is relative to its file). */
const TEMPLATE_KEYS = new Set(["mdserver.default_template"]);

/** What loadConfig needs from the outside world. */
export interface ConfigEnvironment {
  /** The text of a file. */
  readTextFile(path: string): Promise<string>;
  /** Whether a path is a file or a folder; null when it does not exist. */
  stat(path: string): Promise<{ isFile: boolean; isDirectory: boolean } | null>;
  /** The file names in a folder. */
  readDir(path: string): Promise<string[]>;
  /** This host's name (the default of `[service] hostname`). */
  hostname(): string;
  /** What a path itself is (symlinks not followed); null when absent. Without it, socket paths go unchecked. */
  lstat?(path: string): Promise<{ isSocket: boolean } | null>;
}

/** The real file system and host name. */
export const realConfigEnvironment: ConfigEnvironment = {
  readTextFile: (path) => Deno.readTextFile(path),
  async stat(path) {
    try {
      const info = await Deno.stat(path);
      return { isFile: info.isFile, isDirectory: info.isDirectory };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  },
  async readDir(path) {
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) {
      if (entry.isFile || entry.isSymlink) names.push(entry.name);
    }
    return names;
  },
  hostname: () => {
    try {
      return Deno.hostname();
    } catch {
      return "localhost";
    }
  },
  async lstat(path) {
    try {
      return { isSocket: (await Deno.lstat(path)).isSocket === true };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  },
};

/**
 * Reads the configuration file and its `[_include_]`s, applies defaults and
 * validates. Throws ConfigError listing every problem.
 */
export async function loadConfig(
  file: string,
  env: ConfigEnvironment = realConfigEnvironment,
): Promise<Config> {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const mainFile = resolve(file);
  const files: string[] = [];
  const values = new Map<string, IniEntry>();

  const main = await readDocument(mainFile, env, problems);
  if (main === null) throw new ConfigError(problems);
  files.push(mainFile);
  const headers = main.headers.map((header) => ({ ...header, file: mainFile }));
  for (const entry of main.entries) values.set(`${entry.section}.${entry.key}`, entry);

  const problemAt = (key: string, message: string) =>
    problems.push({ file: mainFile, section: "_include_", key, message });
  const included = await includedFiles(mainFile, {
    directories: values.get("_include_.directories")?.value,
    files: values.get("_include_.files")?.value,
  }, {
    async listDirectory(path) {
      const info = await statOrProblem(path, mainFile, "directories", env, problems);
      if (info === null) warnings.push(`include directory "${path}" does not exist; skipped`);
      if (!info) return null;
      if (!info.isDirectory) {
        problemAt("directories", `"${path}" is not a directory`);
        return null;
      }
      try {
        return await env.readDir(path);
      } catch (error) {
        problemAt("directories", `cannot read directory "${path}": ${errorMessage(error)}`);
        return null;
      }
    },
    async acceptFile(path) {
      const info = await statOrProblem(path, mainFile, "files", env, problems);
      if (info === null) warnings.push(`include file "${path}" does not exist; skipped`);
      if (!info) return false;
      if (!info.isFile) problemAt("files", `"${path}" is not a regular file`);
      return info.isFile;
    },
  });
  for (const path of included) {
    const document = await readDocument(path, env, problems, {
      file: mainFile,
      section: "_include_",
    });
    if (document === null) continue;
    files.push(path);
    headers.push(...document.headers.map((header) => ({ ...header, file: path })));
    for (const entry of document.entries) {
      if (entry.section === "_include_") {
        warnings.push(
          `${path}: [_include_] only counts in the main file; ignored`,
        );
        continue;
      }
      values.set(`${entry.section}.${entry.key}`, entry);
    }
  }

  const hostname = env.hostname();
  const known = schema(hostname);
  // Unknown sections and keys are reported with the nearest known name, and
  // left out, so the known values are still checked in the same pass.
  const sectionNames = Object.keys(known);
  for (const header of headers) {
    if (known[header.section] !== undefined) continue;
    const near = nearestWord(header.section, sectionNames);
    problems.push({
      file: header.file,
      section: header.section,
      key: null,
      message: `unknown section (line ${header.line}); ${
        near ? `did you mean [${near}]?` : `known sections: ${sectionNames.map((name) => `[${name}]`).join(", ")}`
      }`,
    });
  }
  for (const [id, entry] of [...values]) {
    const section = known[entry.section];
    if (section === undefined) values.delete(id);
    else if (section !== "any" && !(entry.key in section)) {
      const near = nearestWord(entry.key, Object.keys(section));
      problems.push({
        file: entry.file,
        section: entry.section,
        key: entry.key,
        message: `unknown key (line ${entry.line})${near ? `; did you mean ${near}?` : ""}`,
      });
      values.delete(id);
    }
  }

  // md_server's old key wins over the new one when both are set.
  const oldLevel = values.get("mdserver.loglevel");
  if (oldLevel) values.set("loglevels.base", { ...oldLevel, key: "base", section: "loglevels" });

  const raw = new Map<string, string>();
  for (const [sectionName, section] of Object.entries(known)) {
    if (section === "any") continue;
    for (const [key, fallback] of Object.entries(section)) {
      const entry = values.get(`${sectionName}.${key}`);
      const value = entry ? entry.value : fallback;
      if (value === null) continue;
      const id = `${sectionName}.${key}`;
      raw.set(
        id,
        PATH_KEYS.has(id) && entry && value !== "" && !isAbsolute(value) && !TEMPLATE_KEYS.has(id)
          ? resolve(dirname(entry.file), value)
          : value,
      );
    }
  }
  for (const entry of values.values()) {
    if (known[entry.section] === "any") {
      raw.set(`${entry.section}.${entry.key}`, entry.value);
    }
  }

  // A relative template is a file of userdata_dir (as md_server's and the shipped files say).
  const userdataDir = raw.get("mdserver.userdata_dir");
  for (const id of TEMPLATE_KEYS) {
    const value = raw.get(id);
    if (value && !isAbsolute(value) && userdataDir) raw.set(id, resolve(userdataDir, value));
  }
  const config = buildConfig(raw, values, { files, warnings, problems });
  if (problems.length > 0) throw new ConfigError(problems);
  const userdataInfo = await env.stat(config.mdserver.userdataDir).catch(() => null);
  if (userdataInfo === null || !userdataInfo.isDirectory) {
    problems.push(
      located(
        values,
        "mdserver",
        "userdata_dir",
        `directory "${config.mdserver.userdataDir}" does not exist`,
        mainFile,
      ),
    );
  }
  for (const key of ["default_template", "vendordata_template"] as const) {
    const path = raw.get(`mdserver.${key}`);
    if (!path) continue;
    const info = await env.stat(path).catch(() => null);
    if (info === null) {
      problems.push(located(values, "mdserver", key, `"${path}" does not exist`, mainFile));
    }
  }
  const socket = config.admin.socket;
  if (socket !== null && env.lstat) {
    const problem = await socketPathProblem(socket, env.lstat);
    if (problem) problems.push(located(values, "admin", "socket", problem, mainFile));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Why the admin socket path cannot be used, or null: the service replaces
 * only an absent path or a stale socket, never a file, folder or symlink.
 */
async function socketPathProblem(
  path: string,
  lstat: NonNullable<ConfigEnvironment["lstat"]>,
): Promise<string | null> {
  try {
    const info = await lstat(path);
    if (info === null || info.isSocket) return null;
    return `"${path}" exists and is not a socket; the service would refuse to replace it`;
  } catch (error) {
    return `cannot check "${path}": ${errorMessage(error)}`;
  }
}

async function readDocument(
  path: string,
  env: ConfigEnvironment,
  problems: ConfigProblem[],
  includedFrom?: { file: string; section: string },
) {
  let text: string;
  try {
    text = await env.readTextFile(path);
  } catch (error) {
    // A refusal of the permission set is not a configuration error: the CLI names the set and the path.
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) throw error;
    const missing = error instanceof Deno.errors.NotFound;
    problems.push({
      file: includedFrom?.file ?? path,
      section: includedFrom?.section ?? "-",
      key: null,
      message: includedFrom
        ? `cannot read the included file "${path}": ${missing ? "it does not exist" : errorMessage(error)}`
        : missing
        ? "the file does not exist (give the configuration with --config FILE or $MDSERVER_CONFIG)"
        : `cannot read it: ${errorMessage(error)}`,
    });
    return null;
  }
  try {
    return parseIni(text, path);
  } catch (error) {
    problems.push({ file: path, section: "-", key: null, message: errorMessage(error) });
    return null;
  }
}

async function statOrProblem(
  path: string,
  mainFile: string,
  key: string,
  env: ConfigEnvironment,
  problems: ConfigProblem[],
) {
  try {
    return await env.stat(path);
  } catch (error) {
    problems.push({
      file: mainFile,
      section: "_include_",
      key,
      message: `cannot read "${path}": ${errorMessage(error)}`,
    });
    return undefined;
  }
}

/** An error's message without the OS detail Deno appends (`(os error 13): readfile '…'`). */
function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ \(os error \d+\)(: \w+ '[^']*')?/g, "").toLowerCase();
}
