/**
 * The CLI's error lines: one `mdserver: error: …` line per problem, naming
 * the thing at fault and the fix, from any error a command throws.
 *
 * @module
 */

import { ConfigError, formatProblem } from "../config/mod.ts";
import { type CommandSpec, findCommand } from "./commands.ts";
import { synopsis, UsageError } from "./args.ts";

const PERMISSION_KIND: Record<string, { verb: string; key: string }> = {
  read: { verb: "read", key: "read" },
  write: { verb: "write", key: "write" },
  net: { verb: "connect to or listen on", key: "net" },
  run: { verb: "run", key: "run" },
  env: { verb: "read the environment variable", key: "env" },
  sys: { verb: "read system information", key: "sys" },
};

/** The lines to print for an error a command threw (usage errors add the command's synopsis). */
export function errorLines(error: unknown, spec: CommandSpec | null): string[] {
  if (error instanceof UsageError) {
    const command = error.command ?? spec;
    return [
      `mdserver: error: ${error.message}`,
      command
        ? `usage: ${synopsis(command)} (mdserver help ${command.name})`
        : "usage: mdserver <command> [options] (mdserver help)",
    ];
  }
  if (error instanceof ConfigError) {
    return error.problems.map((problem) => `mdserver: error: ${formatProblem(problem)}`);
  }
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    const refusal = permissionRefusal(error.message, spec);
    if (refusal) return [`mdserver: error: ${refusal}`];
  }
  const message = error instanceof Error ? error.message : String(error);
  return [`mdserver: error: ${stripOsDetail(message)}`];
}

/** "Requires read access to "/x", run again with …" as the set and the path to add. */
export function permissionRefusal(message: string, spec: CommandSpec | null): string | null {
  const match = message.match(/Requires (\w+) access to "?([^",]+)"?/);
  if (!match) return null;
  const kind = PERMISSION_KIND[match[1]!] ?? { verb: match[1]!, key: match[1]! };
  const set = spec?.permissionSet ?? findCommand("serve")!.permissionSet;
  const what = match[2]!;
  return `the "${set}" permission set may not ${kind.verb} "${what}": add "${what}" to ` +
    `permissions.${set}.${kind.key} in deno.json (or use paths it allows)`;
}

/** "No such file or directory (os error 2): readfile '/x'" as `"/x": no such file or directory`. */
function stripOsDetail(message: string): string {
  return message
    .replace(
      /^(.*) \(os error \d+\): \w+ '([^']*)'.*$/s,
      (_, what: string, path: string) => `"${path}": ${what.toLowerCase()}`,
    )
    .replace(/ \(os error \d+\)/g, "")
    .replace(/\b(\w+Error): /g, "");
}
