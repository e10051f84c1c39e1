/**
 * docs/cli.md is generated from the command table's help text; this test
 * keeps it so. Regenerate: deno run -q -P=test tests/cli_reference_test.ts > docs/cli.md
 *
 * @module
 */

import assert from "node:assert/strict";
import { commandHelp, mainHelp } from "../src/cli/args.ts";
import { COMMANDS } from "../src/cli/commands.ts";

/** The text of docs/cli.md. */
function cliReference(): string {
  const parts = [
    "# The mdserver command",
    "",
    "Generated from `src/cli/commands.ts` (`deno run -q -P=test tests/cli_reference_test.ts > docs/cli.md`); each section is",
    "what `mdserver help COMMAND` prints. Each command runs under its permission set of `deno.json` (`bin/mdserver` and the",
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

Deno.test("docs/cli.md is the help text of every command", async () => {
  const file = new URL("../docs/cli.md", import.meta.url);
  assert.equal(
    await Deno.readTextFile(file),
    cliReference(),
    "regenerate: deno run -q -P=test tests/cli_reference_test.ts > docs/cli.md",
  );
});

if (import.meta.main) await Deno.stdout.write(new TextEncoder().encode(cliReference()));
