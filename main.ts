#!/usr/bin/env -S deno run -P=serve
/**
 * mdserver's command line.
 *
 *   main.ts serve [CONFIG]          serve (md_server's form `main.ts CONFIG` too)
 *   main.ts check-config [CONFIG]   print the effective configuration, or the errors
 *
 * Every command takes `--config FILE`; without it, `MDSERVER_CONFIG`, then
 * /etc/mdserver/mdserver.conf.
 *
 * @module
 */

import { ConfigError, DEFAULT_CONFIG_FILE, formatConfig, loadConfig } from "./src/config/mod.ts";
import { createLogger } from "./src/log/log.ts";
import { importMdServerEntries, parseMdServerDatabase } from "./src/cli/md_server_import.ts";
import { createStore, openKv, startService } from "./src/service/service.ts";
import { buildSeedIso, parseSeedIsoArgs } from "./src/seed/seed_iso.ts";
import { resolve } from "node:path";
import { runCtl } from "./src/cli/ctl.ts";
import { runInstallHook } from "./src/hook/install.ts";
import { install, runProgram } from "./src/cli/install.ts";

const USAGE = `usage: mdserver <command> [--config FILE] [args]

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
  command: string;
  args: string[];
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
export function configPath(line: CommandLine, positional?: string): string {
  const option = line.options.get("config");
  if (typeof option === "string") return option;
  if (positional) return positional;
  return Deno.env.get("MDSERVER_CONFIG") ?? DEFAULT_CONFIG_FILE;
}

async function serve(line: CommandLine): Promise<number> {
  const file = configPath(line, line.args[0]);
  const config = await loadConfig(file);
  const log = createLogger({
    level: config.mdserver.debug ? "debug" : config.loglevels.base,
  });
  for (const warning of config.warnings) log.warning(`config: ${warning}`);
  log.info(
    `mdserver ${config.service.version} using ${config.files.join(", ")}`,
  );
  const service = await startService(config, { log });
  let stopping = false;
  const stop = (signal: Deno.Signal) => {
    if (stopping) return; // a second signal (e.g. from the task runner too) changes nothing
    stopping = true;
    log.info(`shutting down on ${signal}`);
    service.shutdown();
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  await service.finished;
  await service.shutdown();
  return 0;
}

async function checkConfig(line: CommandLine): Promise<number> {
  const config = await loadConfig(configPath(line, line.args[0]));
  console.log(formatConfig(config).trimEnd());
  return 0;
}

async function importMdServer(line: CommandLine): Promise<number> {
  const config = await loadConfig(configPath(line));
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
      console.log(
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
    console.log(
      `${outcomes.length - failed} of ${outcomes.length} entries imported from ${file}`,
    );
    return failed > 0 ? 1 : 0;
  } finally {
    kv.close();
  }
}

async function seedIso(line: CommandLine): Promise<number> {
  let request;
  try {
    request = parseSeedIsoArgs(line.args, line.options);
  } catch (error) {
    console.error(`mdserver: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  // `deno task` runs in the project folder; INIT_CWD is where the operator was.
  const cwd = Deno.env.get("INIT_CWD");
  if (cwd !== undefined) request = { ...request, output: resolve(cwd, request.output) };
  const config = await loadConfig(configPath(line));
  const log = createLogger({ level: config.loglevels.base });
  console.log(await buildSeedIso(config, request, { log }));
  return 0;
}

/** Runs a command line; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let line: CommandLine;
  try {
    line = parseCommandLine(argv);
  } catch (error) {
    console.error(`mdserver: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (line.options.has("help") || line.command === "help") {
    console.log(USAGE);
    return 0;
  }
  try {
    switch (line.command) {
      case "serve":
        return await serve(line);
      case "check-config":
        return await checkConfig(line);
      case "import-md-server":
        return await importMdServer(line);
      case "seed-iso":
        return await seedIso(line);
      case "install": {
        const root = line.options.get("root");
        if (root === true) throw new TypeError("option --root needs a value");
        return await install({
          projectDir: decodeURIComponent(new URL(".", import.meta.url).pathname),
          denoPath: Deno.execPath(),
          root: root ?? null,
          force: line.options.has("force"),
          print: (text) => console.log(text),
          run: runProgram,
        });
      }
      case "install-hook":
        return await runInstallHook(line, {
          projectDir: decodeURIComponent(
            new URL(".", import.meta.url).pathname,
          ),
          print: (text) => console.log(text),
        });
      case "ctl":
        return await runCtl(line, {
          configFile: configPath(line),
          print: (text) => console.log(text),
        });
      case "":
        console.error(USAGE);
        return 2;
      default:
        if (line.command.includes("/") || line.command.endsWith(".conf")) {
          // md_server's form: `mdserver /etc/mdserver/mdserver.conf`
          return await serve({
            ...line,
            command: "serve",
            args: [line.command, ...line.args],
          });
        }
        console.error(`mdserver: unknown command "${line.command}"\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`mdserver: configuration errors:\n${error.message}`);
      return 1;
    }
    console.error(`mdserver: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
