#!/usr/bin/env -S deno run -P=serve
/**
 * mdserver's command line.
 *
 *   main.ts serve [CONFIG]          serve (md_server's form `main.ts CONFIG` too)
 *   main.ts check-config [CONFIG]   print the effective configuration, or the errors
 *
 * Every command takes `--config FILE`; without it, `MDSERVER_CONFIG`, then
 * /etc/mdserver/mdserver.conf. The commands are in src/cli/main.ts; this
 * file gives them the real world.
 *
 * @module
 */

import { type CliDeps, runMain } from "./src/cli/main.ts";
import { runProgram } from "./src/cli/install.ts";
import { progressPrinter } from "./src/cli/progress.ts";
import { type StartOptions, startService } from "./src/service/mod.ts";
import { ConfigDriveImages } from "./src/seed/mod.ts";

export { type CommandLine, parseCommandLine } from "./src/cli/args.ts";

const encoder = new TextEncoder();

/** The real world: stdout, stderr, the environment, this project's folder, signals. */
export function realCliDeps(): CliDeps {
  return {
    // The command's own output, not log lines: printed as is.
    print: (text) => console.log(text),
    printError: (text) => console.error(text),
    env: (name) => Deno.env.get(name),
    projectDir: decodeURIComponent(new URL(".", import.meta.url).pathname),
    execPath: Deno.execPath(),
    runProgram,
    // The service keeps the config drives of the domains that ask for one (docs/configdrive.md).
    startService: (config, options: StartOptions) =>
      startService(config, { configDrives: (deps) => new ConfigDriveImages(deps), ...options }),
    onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
    printProgress: progressPrinter((text) => Deno.stderr.writeSync(encoder.encode(text)), Deno.stderr.isTerminal()),
  };
}

/** Runs a command line with the real world; returns the exit code. */
export function main(argv: string[]): Promise<number> {
  return runMain(argv, realCliDeps());
}

if (import.meta.main) Deno.exit(await main(Deno.args));
