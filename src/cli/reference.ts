/**
 * docs/cli.md, generated from the command table and its help text (a test
 * keeps the file equal to this).
 *
 * @module
 */

import { commandHelp, mainHelp } from "./args.ts";
import { COMMANDS } from "./commands.ts";

/** The text of docs/cli.md. */
export function cliReference(): string {
  const parts = [
    "# The mdserver command",
    "",
    "Generated from `src/cli/commands.ts` (`deno run -q src/cli/reference.ts > docs/cli.md`); each section is what",
    "`mdserver help COMMAND` prints. Each command runs under its permission set of `deno.json` (`bin/mdserver` and the",
    "installed `/usr/local/bin/mdserver` choose it). Exit status: 0 done, 1 the operation failed, 2 usage error. Errors are",
    "one line each, `mdserver: error: …`, on standard error.",
    "",
    "```",
    mainHelp(),
    "```",
  ];
  for (const command of COMMANDS) {
    parts.push(
      "",
      `## ${command.name}`,
      "",
      `Permission set: \`${command.permissionSet}\`.`,
      "",
      "```",
      commandHelp(command),
      "```",
    );
  }
  return parts.join("\n") + "\n";
}

if (import.meta.main) await Deno.stdout.write(new TextEncoder().encode(cliReference()));
