/**
 * Installing the libvirt qemu hook: the compiled binary when there is one
 * (`deno task compile-hook`), else a small bash wrapper running `hook.ts`
 * with the `hook` permission set of deno.json, written out as `--allow-*`
 * flags at install time so that deno runs without a configuration file
 * (reading deno.json costs every call about 1.5 ms, 5% of the hook's time).
 * Like the compiled hook, the wrapper is installed again after that set changes.
 *
 * An existing hook that mdserver did not write is never silently replaced:
 * without `force` the install refuses and says how to proceed; with `force`
 * the old file is kept beside it as `qemu.orig` (then `.orig.1`, …). A
 * wrapper mdserver wrote earlier, or a file identical to the new one, is
 * replaced or left as it is without `force`.
 *
 * @module
 */

import { writeFileAtomic } from "../io/files.ts";
import { shellQuote } from "../io/mod.ts";

/** Where libvirt looks for the qemu hook. */
export const DEFAULT_HOOK_PATH = "/etc/libvirt/hooks/qemu";

/** The compiled hook, relative to the project folder. */
export const DEFAULT_HOOK_BINARY = "dist/mdserver-hook";

/** A line every wrapper carries, so a later install knows it may replace it. */
export const WRAPPER_MARKER = "# mdserver-hook-wrapper: written by `main.ts install-hook`";

/** Options of installHook. */
export interface InstallHookOptions {
  /** The project folder holding deno.json and hook.ts (absolute). */
  projectDir: string;
  /** The deno executable the wrapper runs (absolute). */
  denoPath: string;
  /** Hook path, default DEFAULT_HOOK_PATH. */
  path?: string;
  /** Install under this folder instead of / (for packaging and tests). */
  root?: string | null;
  /** Compiled hook; relative to projectDir. Default DEFAULT_HOOK_BINARY, used only when it exists. */
  binary?: string | null;
  /** Whether `binary` was asked for explicitly, so its absence is an error. */
  binaryRequired?: boolean;
  /** Replace a hook mdserver did not write, keeping it as `.orig`. */
  force?: boolean;
  /** DENO_DIR the wrapper exports (so libvirt's runs reuse the warm cache); null leaves deno's default. */
  denoDir?: string | null;
}

/** What installHook did. */
export interface InstallHookResult {
  /** The file written (root included). */
  path: string;
  /** Whether the compiled hook or a wrapper running hook.ts was installed. */
  kind: "binary" | "wrapper";
  /** "unchanged" when the same hook was already there. */
  action: "created" | "replaced" | "unchanged";
  /** Where a foreign hook was moved, or null. */
  backup: string | null;
  /** Things to tell the operator, one line each. */
  notes: string[];
}

/** Thrown when a hook that mdserver did not write is in the way. */
export class HookExistsError extends Error {
  /** The error saying which file is in the way and what to do. */
  constructor(message: string) {
    super(message);
    this.name = "HookExistsError";
  }
}

/** The logger the wrapper copies the hook's report to. */
export const DEFAULT_LOGGER = "/usr/bin/logger";
/** Longest time the detached logger may take. */
export const LOGGER_TIMEOUT_SECONDS = 1;

/** What the `hook` set may name in deno.json, and the flags it becomes. */
const PERMISSION_KINDS = ["read", "write", "net", "env", "sys", "run", "ffi", "import"];

/**
 * The `hook` permission set of `<projectDir>/deno.json` as `deno run`
 * flags (`--allow-read=/etc/mdserver,…`); relative paths are resolved
 * against projectDir, as deno does. Throws naming the file when the set is
 * missing or has a shape deno would not take.
 */
export async function hookPermissionFlags(projectDir: string): Promise<string[]> {
  const file = resolveIn(projectDir, "deno.json");
  const config = JSON.parse(await Deno.readTextFile(file));
  const set = config?.permissions?.hook;
  if (typeof set !== "object" || set === null) {
    throw new TypeError(`Cannot use "${file}": it has no "hook" permission set`);
  }
  const flags: string[] = [];
  for (const [kind, value] of Object.entries(set)) {
    if (!PERMISSION_KINDS.includes(kind)) {
      throw new TypeError(`Cannot use "${file}": permission "${kind}" of the "hook" set is not one deno knows`);
    }
    const rule = Array.isArray(value) || typeof value === "boolean" ? { allow: value } : value;
    for (const [verb, entries] of Object.entries(rule as Record<string, unknown>)) {
      if (verb !== "allow" && verb !== "deny") {
        throw new TypeError(`Cannot use "${file}": "${kind}.${verb}" of the "hook" set is not allow or deny`);
      }
      if (entries === true) flags.push(`--${verb}-${kind}`);
      else if (Array.isArray(entries) && entries.length > 0) {
        const paths = kind === "read" || kind === "write" || kind === "ffi";
        const list = entries.map((entry) => paths ? resolveIn(projectDir, String(entry)) : String(entry));
        flags.push(`--${verb}-${kind}=${list.join(",")}`);
      } else if (entries !== false && !Array.isArray(entries)) {
        throw new TypeError(`Cannot use "${file}": "${kind}" of the "hook" set is neither true, false nor a list`);
      }
    }
  }
  return flags;
}

/** The bash wrapper that runs hook.ts with `permissionFlags` (hookPermissionFlags(): the `hook` set). */
export function hookWrapper(
  options: {
    denoPath: string;
    projectDir: string;
    permissionFlags: string[];
    denoDir?: string | null;
    loggerPath?: string;
  },
): string {
  const dir = options.projectDir.replace(/\/+$/, "");
  const lines = [
    "#!/bin/bash",
    "# libvirt qemu hook for mdserver: uploads every starting domain to mdserver's",
    "# admin API and never fails a start. See docs/hook.md.",
    WRAPPER_MARKER,
    "",
    "# Only these calls do anything; skip starting deno for the others.",
    'case "$2 $3" in',
    '"prepare begin" | "migrate begin" | "restore begin" | "release end") ;;',
    "*) exit 0 ;;",
    "esac",
    "",
    "export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1",
  ];
  if (options.denoDir) {
    lines.push(`export DENO_DIR=${shellQuote(options.denoDir)}`);
  }
  const logger = shellQuote(options.loggerPath ?? DEFAULT_LOGGER);
  lines.push(
    "",
    "# hook.ts exits 0 whatever happens and writes nothing to stdout (libvirt",
    "# would take it as a replacement XML); its one-line report is kept.",
    "# The permissions are deno.json's hook set as it was at install time,",
    "# given as flags: without a configuration file to read, deno starts faster.",
    `report=$(${shellQuote(options.denoPath)} run -q --no-prompt --no-config ${
      options.permissionFlags.map(shellQuote).join(" ")
    } ${shellQuote(`${dir}/hook.ts`)} "$@" 2>&1 >/dev/null) ||`,
    '  report="mdserver-hook: $1 $2 $3: the hook could not run (exit status $?)"',
    '[ -n "$report" ] || exit 0',
    "printf '%s\\n' \"$report\" >&2",
    "",
    "# libvirt logs a hook's stderr only when the hook fails, and this one never",
    "# does: copy the report to the journal too. logger runs detached from",
    "# libvirt's pipes (they reach EOF when this script exits) and is given",
    `# at most ${LOGGER_TIMEOUT_SECONDS} s, so a hung syslog never holds a domain start.`,
    `if [ -x ${logger} ] && [ -x /usr/bin/timeout ]; then`,
    `  /usr/bin/timeout ${LOGGER_TIMEOUT_SECONDS} ${logger} -t mdserver-hook -p daemon.warning -- "$report" </dev/null >/dev/null 2>&1 &`,
    "fi",
    "exit 0",
    "",
  );
  return lines.join("\n");
}

/** Installs the hook; throws HookExistsError when a foreign hook is in the way and `force` is not set. */
export async function installHook(
  options: InstallHookOptions,
): Promise<InstallHookResult> {
  const hookPath = options.path ?? DEFAULT_HOOK_PATH;
  if (!hookPath.startsWith("/")) {
    throw new TypeError(`hook path "${hookPath}" must be absolute`);
  }
  const target = options.root ? `${options.root.replace(/\/+$/, "")}${hookPath}` : hookPath;
  const notes: string[] = [];

  const binaryPath = options.binary === null
    ? null
    : resolveIn(options.projectDir, options.binary ?? DEFAULT_HOOK_BINARY);
  let content: Uint8Array;
  let kind: "binary" | "wrapper";
  const binary = binaryPath === null ? null : await readIfFile(binaryPath);
  if (binary !== null) {
    content = binary;
    kind = "binary";
  } else {
    if (options.binaryRequired) {
      throw new Deno.errors.NotFound(
        `hook binary "${binaryPath}" not found; build it with \`deno task compile-hook\``,
      );
    }
    const permissionFlags = await hookPermissionFlags(options.projectDir);
    content = new TextEncoder().encode(hookWrapper({ ...options, permissionFlags }));
    kind = "wrapper";
    if (binaryPath !== null) {
      notes.push(
        `no compiled hook at ${binaryPath} (deno task compile-hook); installed a wrapper running hook.ts`,
      );
    }
  }

  const existing = await readIfFile(target);
  let backup: string | null = null;
  let action: InstallHookResult["action"] = "created";
  if (existing !== null) {
    if (sameBytes(existing, content)) {
      await Deno.chmod(target, 0o755);
      return { path: target, kind, action: "unchanged", backup: null, notes };
    }
    action = "replaced";
    if (!isOurWrapper(existing)) {
      if (!options.force) {
        const dir = hookPath.slice(0, hookPath.lastIndexOf("/"));
        throw new HookExistsError(
          `${target} already exists and mdserver did not write it; ` +
            `rerun with --force to replace it (it is kept as ${target}.orig), ` +
            `or install beside it with --path ${dir}/qemu.d/mdserver (libvirt 6.5 and later runs every script in qemu.d after the main hook)`,
        );
      }
      backup = await freeBackupName(target);
      await Deno.rename(target, backup);
      notes.push(`the previous hook is kept as ${backup}`);
    }
  } else {
    notes.push(
      "libvirt looks for hook scripts only when it starts: restart libvirtd (or virtqemud) once",
    );
  }

  await Deno.mkdir(target.slice(0, target.lastIndexOf("/")) || "/", {
    recursive: true,
  });
  await writeFileAtomic(target, content, { mode: 0o755 });
  return { path: target, kind, action, backup, notes };
}

function isOurWrapper(bytes: Uint8Array): boolean {
  const head = new TextDecoder().decode(bytes.subarray(0, 4096));
  return head.startsWith("#!") && head.includes(WRAPPER_MARKER);
}

async function freeBackupName(target: string): Promise<string> {
  for (let n = 0;; n++) {
    const name = n === 0 ? `${target}.orig` : `${target}.orig.${n}`;
    try {
      await Deno.lstat(name);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return name;
      throw error;
    }
  }
}

async function readIfFile(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function resolveIn(dir: string, path: string): string {
  return path.startsWith("/") ? path : `${dir.replace(/\/+$/, "")}/${path}`;
}

/** The parts of a parsed command line install-hook reads (main.ts's CommandLine fits). */
export interface InstallHookLine {
  /** `--name value` options and `--flag`s. */
  options: Map<string, string | true>;
}

/**
 * `main.ts install-hook [--path P] [--binary B] [--root DIR] [--force]`:
 * installs the hook and prints what it did; returns the exit code.
 */
export async function runInstallHook(
  line: InstallHookLine,
  deps: {
    projectDir: string;
    print(line: string): void;
    denoPath?: string;
    denoDir?: string | null;
  },
): Promise<number> {
  const option = (name: string): string | null => {
    const value = line.options.get(name);
    if (value === true) throw new TypeError(`option --${name} needs a value`);
    return value ?? null;
  };
  const binary = option("binary");
  let denoDir = deps.denoDir;
  if (denoDir === undefined) {
    try {
      denoDir = Deno.env.get("DENO_DIR") ?? null;
    } catch {
      denoDir = null;
    }
  }
  const result = await installHook({
    projectDir: deps.projectDir,
    denoPath: deps.denoPath ?? Deno.execPath(),
    path: option("path") ?? DEFAULT_HOOK_PATH,
    root: option("root"),
    binary: binary ?? DEFAULT_HOOK_BINARY,
    binaryRequired: binary !== null,
    force: line.options.has("force"),
    denoDir,
  });
  const what = result.kind === "binary" ? "compiled hook" : "hook wrapper (runs hook.ts with -P=hook)";
  deps.print(
    `${result.action === "unchanged" ? "unchanged" : result.action}: ${result.path}: ${what}`,
  );
  for (const note of result.notes) deps.print(`note: ${note}`);
  return 0;
}
