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
import { createLogger, type ReloadableLogger } from "../log/mod.ts";
import { buildSeedIso, parseSeedIsoArgs } from "../seed/seed_iso.ts";
import { createStore, openKv, type startService } from "../service/mod.ts";
import { runCtl } from "./ctl.ts";
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
}

/** The command line's usage text. */
export const USAGE = `usage: mdserver <command> [--config FILE] [args]

commands:
  serve [CONFIG]          run the metadata service
  check-config [CONFIG]   print the effective configuration or its errors
  import-md-server [DB]   import md_server's database (default: db_file), keeping
                          names, UUIDs, MACs, addresses and instance-ids
                          (--new-instance-ids: derive ids from UUIDs instead)
  seed-iso INSTANCE --format configdrive|nocloud -o FILE
                          write a config-2 or cidata seed image of an instance
  install [--root DIR] [--force]
                          install config (kept if present), the systemd unit, the libvirt
                          network XML and the hook; on / also the mdserver user
  install-hook [--path P] [--binary B] [--root DIR] [--force]
                          install the libvirt qemu hook (default /etc/libvirt/hooks/qemu):
                          the compiled hook if built, else a wrapper running hook.ts
  ctl gc [--virsh] [--older-than AGE] [--dry-run] [--force]
                          remove instances whose domains are gone (see docs/hook.md)
  ctl smbios [DOMAIN] [--datasource nocloud|openstack]
                          print the libvirt <sysinfo> that points cloud-init here
                          (see docs/cloud-init.md)
  CONFIG                  md_server's form: serve with CONFIG

The configuration is --config FILE, else $MDSERVER_CONFIG, else ${DEFAULT_CONFIG_FILE}.`;

/** Parsed command line: the command, its positional arguments and options. */
export interface CommandLine {
  /** The command (`serve`, `ctl`…), or "" when none was given. */
  command: string;
  /** Positional arguments after the command. */
  args: string[];
  /** `--name value` options and `--flag`s (value true). */
  options: Map<string, string | true>;
}

/** Splits argv into command, positional arguments and `--name value` / `--flag` options. */
export function parseCommandLine(
  argv: string[],
  flags: string[] = [
    "json",
    "help",
    "virsh",
    "new-instance-ids",
    "dry-run",
    "force",
  ],
): CommandLine {
  const args: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("--")) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [
        string,
        string | undefined,
      ];
      if (inline !== undefined) options.set(name, inline);
      else if (flags.includes(name)) options.set(name, true);
      else {
        const value = argv[++i];
        if (value === undefined) {
          throw new TypeError(`option --${name} needs a value`);
        }
        options.set(name, value);
      }
    } else if (arg === "-h") {
      options.set("help", true);
    } else args.push(arg);
  }
  const command = args.shift() ?? "";
  return { command, args, options };
}

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
  // SIGHUP (systemctl reload): a valid configuration takes effect for the
  // next request; an invalid one is refused with every problem logged, and
  // the running one stays. One reload at a time, in order; none before the start.
  let reloading = Promise.resolve();
  deps.onSignal("SIGHUP", () => {
    const running = service;
    if (running !== null) reloading = reloading.then(() => reloadConfig(file, running, log));
  });
  try {
    service = await deps.startService(config, { log, signal: starting.signal });
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
): Promise<void> {
  log.info(`reloading the configuration on SIGHUP: ${file}`);
  let next: Config;
  try {
    next = await loadConfig(file);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems.map(formatProblem) : [(error as Error).message];
    for (const problem of problems) log.error(`reload refused: ${problem}`);
    log.error(`reload refused: ${problems.length} problem(s); the running configuration stays`);
    return;
  }
  for (const warning of next.warnings) log.warning(`config: ${warning}`);
  const needRestart = service.reload(next);
  log.setLevel(next.mdserver.debug ? "debug" : next.loglevels.base);
  for (const id of needRestart) log.warning(`reload: ${id} changed; it takes effect at the next restart`);
  log.info(`configuration reloaded from ${next.files.join(", ")}`);
}

async function checkConfig(line: CommandLine, deps: CliDeps): Promise<number> {
  const config = await loadConfig(configPath(line, deps.env, line.args[0]));
  deps.print(formatConfig(config).trimEnd());
  return 0;
}

async function importMdServer(line: CommandLine, deps: CliDeps): Promise<number> {
  const config = await loadConfig(configPath(line, deps.env));
  const file = line.args[0] ?? config.mdserver.dbFile;
  const entries = parseMdServerDatabase(await Deno.readTextFile(file), file);
  const kv = await openKv(config);
  try {
    const outcomes = await importMdServerEntries(
      createStore(kv, config),
      entries,
      {
        keepInstanceIds: !line.options.has("new-instance-ids"),
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
    deps.printError(`mdserver: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  // `deno task` runs in the project folder; INIT_CWD is where the operator was.
  const cwd = deps.env("INIT_CWD");
  if (cwd !== undefined) request = { ...request, output: resolve(cwd, request.output) };
  const config = await loadConfig(configPath(line, deps.env));
  const log = createLogger({ level: config.loglevels.base });
  deps.print(await buildSeedIso(config, request, { log }));
  return 0;
}

/** Runs a command line; returns the exit code (0 done, 1 failed, 2 bad usage). */
export async function runMain(argv: string[], deps: CliDeps): Promise<number> {
  let line: CommandLine;
  try {
    line = parseCommandLine(argv);
  } catch (error) {
    deps.printError(`mdserver: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (line.options.has("help") || line.command === "help") {
    deps.print(USAGE);
    return 0;
  }
  try {
    // One case per command, shaped like ctl.ts's own dispatch on purpose.
    switch (line.command) {
      case "serve":
        return await serve(line, deps);
      case "check-config":
        return await checkConfig(line, deps);
      case "import-md-server":
        return await importMdServer(line, deps);
      case "seed-iso":
        return await seedIso(line, deps);
      case "install": {
        const root = line.options.get("root");
        if (root === true) throw new TypeError("option --root needs a value");
        return await install({
          projectDir: deps.projectDir,
          denoPath: deps.execPath,
          root: root ?? null,
          force: line.options.has("force"),
          print: deps.print,
          run: deps.runProgram,
        });
      }
      case "install-hook":
        return await runInstallHook(line, {
          projectDir: deps.projectDir,
          print: deps.print,
        });
      case "ctl":
        return await runCtl(line, {
          configFile: configPath(line, deps.env),
          print: deps.print,
        });
      case "":
        deps.printError(USAGE);
        return 2;
      default:
        if (line.command.includes("/") || line.command.endsWith(".conf")) {
          // md_server's form: `mdserver /etc/mdserver/mdserver.conf`
          return await serve({ ...line, command: "serve", args: [line.command, ...line.args] }, deps);
        }
        deps.printError(`mdserver: unknown command "${line.command}"\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      deps.printError(`mdserver: configuration errors:\n${error.message}`);
      return 1;
    }
    deps.printError(`mdserver: ${(error as Error).message}`);
    return 1;
  }
}
