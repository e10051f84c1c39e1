/**
 * mdserver's command line: parsing the arguments and running a command
 * (`serve`, `check-config`, `import-md-server`, `seed-iso`, `install`,
 * `install-hook`, `ctl …`). main.ts only supplies the real world (CliDeps),
 * so tests run every command's handling in process.
 *
 * @module
 */

import { resolve } from "node:path";
import {
  type Config,
  ConfigError,
  DEFAULT_CONFIG_FILE,
  formatConfig,
  formatProblem,
  loadConfig,
} from "../config/mod.ts";
import { runInstallHook } from "../hook/install.ts";
import { readQemuAccount } from "../hook/config_drive_owner.ts";
import { createLogger, type ReloadableLogger } from "../log/mod.ts";
import { buildSeedIso, parseSeedIsoArgs } from "../seed/seed_iso.ts";
import type { ReloadOutcome } from "../http/mod.ts";
import { createStore, type startService } from "../service/mod.ts";
import { DenoKvBackend, formatProbe, migrateStore, openBackend, probeEndpoints } from "../store/mod.ts";
import { commandHelp, type CommandLine, mainHelp, parseCommandLine, type Parsed, UsageError } from "./args.ts";
import { type CommandSpec, findCommand } from "./commands.ts";
import { runCtl } from "./ctl.ts";
import { waitForBoots, watchBoots } from "./boot_commands.ts";
import { errorLines } from "./messages.ts";
import { install, type InstallOptions } from "./install.ts";
import { importMdServerEntries, parseMdServerDatabase } from "./md_server_import.ts";

/** What the command line needs from the outside world. */
export interface CliDeps {
  /** Writes a line of output (stdout). */
  print(text: string): void;
  /** Writes a line of error output (stderr). */
  printError(text: string): void;
  /** Reads an environment variable. */
  env(name: string): string | undefined;
  /** The folder of main.ts (the installed project). */
  projectDir: string;
  /** The deno binary running this. */
  execPath: string;
  /** Runs a program, inheriting output; its exit code (install). */
  runProgram: InstallOptions["run"];
  /** Starts the service (serve). */
  startService: typeof startService;
  /** Calls `handler` when the process gets `signal` (serve's shutdown). */
  onSignal(signal: Deno.Signal, handler: () => void): void;
  /** Shows progress of a long operation (stderr; a bar on a terminal); default none. */
  printProgress?: (text: string) => void;
  /** Writes text to stdout as is (`watch` redrawing in place); default: print. */
  write?: (text: string) => void;
  /** Whether stdout is a terminal (`watch` redraws in place there). */
  stdoutIsTerminal?: boolean;
  /** The terminal's width in columns. */
  terminalColumns?: () => number;
  /** Ends `watch` (Ctrl-C; tests); default: never. */
  stopSignal?: AbortSignal;
}

export { type CommandLine, parseCommandLine };

/** The command line's usage text (the top-level help). */
export const USAGE: string = mainHelp();

/** The configuration file a command uses: --config, then a positional one, then MDSERVER_CONFIG, then the default. */
export function configPath(line: CommandLine, env: (name: string) => string | undefined, positional?: string): string {
  const option = line.options.get("config");
  if (typeof option === "string") return option;
  if (positional) return positional;
  return env("MDSERVER_CONFIG") ?? DEFAULT_CONFIG_FILE;
}

async function serve(line: CommandLine, deps: CliDeps): Promise<number> {
  const file = configPath(line, deps.env, line.args[0]);
  const config = await loadConfig(file);
  const log = createLogger({
    level: config.mdserver.debug ? "debug" : config.loglevels.base,
  });
  for (const warning of config.warnings) log.warning(`config: ${warning}`);
  log.info(
    `mdserver ${config.service.version} using ${config.files.join(", ")}`,
  );
  let stopping = false;
  let service: Awaited<ReturnType<typeof startService>> | null = null;
  // A start still waiting for the metadata address (the bridge not up yet) is aborted by the signal.
  const starting = new AbortController();
  const signalled = Promise.withResolvers<void>();
  const stop = (signal: Deno.Signal) => {
    if (stopping) return; // a second signal (e.g. from the task runner too) changes nothing
    stopping = true;
    log.info(`shutting down on ${signal}`);
    starting.abort();
    signalled.resolve();
  };
  deps.onSignal("SIGTERM", () => stop("SIGTERM"));
  deps.onSignal("SIGINT", () => stop("SIGINT"));
  // SIGHUP (systemctl reload) and `mdserver reload` (POST /v1/reload): a
  // valid configuration takes effect for the next request; an invalid one is
  // refused with every problem logged, and the running one stays. One reload
  // at a time, in order; none before the start.
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (why: string): Promise<ReloadOutcome> => {
    const running = service;
    if (running === null) return Promise.resolve({ ok: false, problems: ["the service is still starting"] });
    const next = reloading.then(() => reloadConfig(file, running, log, why));
    reloading = next;
    return next;
  };
  deps.onSignal("SIGHUP", () => void reload("on SIGHUP"));
  try {
    service = await deps.startService(config, { log, signal: starting.signal, reload: () => reload("as asked") });
  } catch (error) {
    if (starting.signal.aborted) return 0;
    throw error;
  }
  await Promise.race([service.finished, signalled.promise]);
  // Bounded by [limits] shutdown_timeout, whatever clients still hold open.
  await service.shutdown();
  return 0;
}

/** Reads the configuration again and hands it to the running service, or logs why not. */
async function reloadConfig(
  file: string,
  service: { reload(next: Config): string[] },
  log: ReloadableLogger,
  why: string,
): Promise<ReloadOutcome> {
  log.info(`reloading the configuration ${why}: ${file}`);
  let next: Config;
  try {
    next = await loadConfig(file);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems.map(formatProblem) : [(error as Error).message];
    for (const problem of problems) log.error(`reload refused: ${problem}`);
    log.error(`reload refused: ${problems.length} problem(s); the running configuration stays`);
    return { ok: false, problems };
  }
  for (const warning of next.warnings) log.warning(`config: ${warning}`);
  const needRestart = service.reload(next);
  log.setLevel(next.mdserver.debug ? "debug" : next.loglevels.base);
  for (const id of needRestart) log.warning(`reload: ${id} changed; it takes effect at the next restart`);
  log.info(`configuration reloaded from ${next.files.join(", ")}`);
  return { ok: true, files: next.files, needRestart };
}

async function checkConfig(line: CommandLine, deps: CliDeps): Promise<number> {
  const config = await loadConfig(configPath(line, deps.env, line.args[0]));
  deps.print(formatConfig(config).trimEnd());
  const owner = await qemuOwnerProblem(config);
  if (owner !== null) deps.printError(`mdserver: warning: ${owner}`);
  if (config.store.backend !== "etcd") return 0;
  // A fleet's store: which members answer (the service needs one that has a leader).
  const probes = await probeEndpoints(config.store.endpoints, config.store.timeoutMs);
  for (const probe of probes) deps.print(formatProbe(probe));
  const serving = probes.filter((probe) => probe.reachable && probe.quorumProblem === null).length;
  deps.print(`etcd: ${serving} of ${probes.length} endpoints reachable with quorum`);
  return serving > 0 ? 0 : 1;
}

/**
 * Why the hook could not give config drives to QEMU's user, or null: a
 * mistyped `[configdrive] qemu_user` or `qemu_conf` shows here, not only as
 * the hook's line at the next domain start. A warning, not an error: the
 * hook fails open, and this command gates the service's start. With `auto`
 * on a host without libvirt's qemu.conf there is nothing to check.
 */
async function qemuOwnerProblem(config: Config): Promise<string | null> {
  const settings = {
    dir: config.configDrive.dir,
    qemuUser: config.configDrive.qemuUser,
    qemuConf: config.configDrive.qemuConf,
  };
  if (settings.qemuUser === "none") return null;
  if (settings.qemuUser === "auto" && !(await Deno.stat(settings.qemuConf).then(() => true, () => false))) return null;
  try {
    await readQemuAccount(settings);
    return null;
  } catch (error) {
    return `[configdrive] qemu_user = ${settings.qemuUser}: config drives stay the service's: ${
      (error as Error).message
    }`;
  }
}

/** Moves the instances of this host's KV file (default kv_file) into the etcd store the configuration names. */
async function migrateStoreCommand(line: CommandLine, deps: CliDeps): Promise<number> {
  const config = await loadConfig(configPath(line, deps.env));
  if (config.store.backend !== "etcd") {
    throw new UsageError(
      "migrate-store moves a KV file into etcd: set [store] backend = etcd",
      findCommand("migrate-store")!,
    );
  }
  const file = line.args[0] ?? config.mdserver.kvFile;
  await Deno.stat(file); // a missing file is an error, not a new empty database
  const kv = await Deno.openKv(file);
  const target = await openBackend(config);
  try {
    const outcomes = await migrateStore(
      createStore(new DenoKvBackend(kv), config),
      createStore(target, config),
      (done) => deps.printProgress?.(`migrate-store: ${done} instances`),
    );
    deps.printProgress?.("");
    for (const outcome of outcomes) {
      deps.print(
        [outcome.result, outcome.name, outcome.ipv4, outcome.instanceId, outcome.reason ?? ""].join("\t").trimEnd(),
      );
    }
    const failed = outcomes.filter((outcome) => outcome.result === "failed").length;
    deps.print(`${outcomes.length - failed} of ${outcomes.length} instances in etcd from ${file}`);
    return failed > 0 ? 1 : 0;
  } finally {
    target.close();
    kv.close();
  }
}

async function importMdServer(line: CommandLine, deps: CliDeps): Promise<number> {
  const config = await loadConfig(configPath(line, deps.env));
  const file = line.args[0] ?? config.mdserver.dbFile;
  const entries = parseMdServerDatabase(await Deno.readTextFile(file), file);
  // Into the configured store: this host's KV file, or the fleet's etcd.
  const kv = await openBackend(config);
  try {
    const outcomes = await importMdServerEntries(
      createStore(kv, config),
      entries,
      {
        keepInstanceIds: !line.options.has("new-instance-ids"),
        progress: (done, total) => deps.printProgress?.(`import-md-server: ${done} of ${total} entries`),
      },
    );
    for (const outcome of outcomes) {
      deps.print(
        [
          outcome.result,
          outcome.name,
          outcome.ipv4 ?? "-",
          outcome.instanceId ?? "-",
          outcome.reason ?? "",
        ]
          .join("\t").trimEnd(),
      );
    }
    deps.printProgress?.("");
    const failed = outcomes.filter((outcome) => outcome.result === "failed").length;
    deps.print(
      `${outcomes.length - failed} of ${outcomes.length} entries imported from ${file}`,
    );
    return failed > 0 ? 1 : 0;
  } finally {
    kv.close();
  }
}

async function seedIso(line: CommandLine, deps: CliDeps): Promise<number> {
  let request;
  try {
    request = parseSeedIsoArgs(line.args, line.options);
  } catch (error) {
    throw new UsageError((error as Error).message, findCommand("seed-iso")!);
  }
  // `deno task` runs in the project folder; INIT_CWD is where the operator was.
  const cwd = deps.env("INIT_CWD");
  if (cwd !== undefined) request = { ...request, output: resolve(cwd, request.output) };
  const config = await loadConfig(configPath(line, deps.env));
  const log = createLogger({ level: config.loglevels.base });
  deps.print(await buildSeedIso(config, request, { log }));
  return 0;
}

/** The commands run through the admin API or from the configuration alone (ctl.ts). */
const CTL_COMMANDS = new Set([
  "list",
  "show",
  "delete",
  "user-data",
  "vendor-data",
  "meta-data",
  "known-hosts",
  "nwfilter",
  "gc",
  "smbios",
  "reload",
  "password",
  "register",
  "configdrive",
]);

async function run(spec: CommandSpec, line: CommandLine, deps: CliDeps): Promise<number> {
  switch (spec.name) {
    case "serve":
      return await serve(line, deps);
    case "check-config":
      return await checkConfig(line, deps);
    case "import-md-server":
      return await importMdServer(line, deps);
    case "migrate-store":
      return await migrateStoreCommand(line, deps);
    case "seed-iso":
      return await seedIso(line, deps);
    case "install":
      return await install({
        projectDir: deps.projectDir,
        denoPath: deps.execPath,
        root: (line.options.get("root") as string | undefined) ?? null,
        force: line.options.has("force"),
        print: deps.print,
        run: deps.runProgram,
      });
    case "install-hook":
      return await runInstallHook(line, { projectDir: deps.projectDir, print: deps.print });
    case "wait":
      return await waitForBoots(line.args, waitTimeout(line, spec), {
        configFile: configPath(line, deps.env),
        print: deps.print,
      });
    case "watch":
      return await watchBoots({
        configFile: configPath(line, deps.env),
        print: deps.print,
        terminal: deps.stdoutIsTerminal ?? false,
        ...(deps.write ? { write: deps.write } : {}),
        ...(deps.terminalColumns ? { columns: deps.terminalColumns } : {}),
        ...(deps.stopSignal ? { signal: deps.stopSignal } : {}),
      });
    default:
      if (!CTL_COMMANDS.has(spec.name)) throw new Error(`command ${spec.name} has no handler`);
      return await runCtl({ args: [spec.name, ...line.args], options: line.options }, {
        configFile: configPath(line, deps.env),
        print: deps.print,
        ...(deps.printProgress ? { progress: deps.printProgress } : {}),
      });
  }
}

/** `wait --timeout S`: seconds, default 900. */
function waitTimeout(line: CommandLine, spec: CommandSpec): number {
  const text = line.options.get("timeout");
  if (text === undefined) return 900;
  const seconds = typeof text === "string" && /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(seconds > 0 && seconds <= 7 * 86_400)) {
    throw new UsageError(`--timeout must be seconds (1 to 604800), not "${text}"`, spec);
  }
  return seconds;
}

/** Runs a command line; returns the exit code (0 done, 1 failed, 2 usage error). */
export async function runMain(argv: string[], deps: CliDeps): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    for (const line of errorLines(error, null)) deps.printError(line);
    return 2;
  }
  if (parsed.kind === "help") {
    deps.print(parsed.spec ? commandHelp(parsed.spec) : USAGE);
    return 0;
  }
  const { spec, line } = parsed;
  if (parsed.deprecatedCtl) deps.printError(`mdserver: note: "ctl ${spec.name}" is now "mdserver ${spec.name}"`);
  try {
    return await run(spec, line, deps);
  } catch (error) {
    for (const text of errorLines(error, spec)) deps.printError(text);
    return error instanceof UsageError ? 2 : 1;
  }
}
