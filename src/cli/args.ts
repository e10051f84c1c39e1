/**
 * Parsing a command line by the command table: node:util parseArgs in
 * strict mode with the command's own options, positionals counted; the
 * help text of each command. Misuse is a UsageError (exit status 2).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { nearestWord } from "../config/mod.ts";
import { COMMANDS, type CommandSpec, findCommand } from "./commands.ts";

/** A command line that does not fit its command: exit status 2, with that command's usage. */
export class UsageError extends Error {
  /** The command it concerns, or null for the top level. */
  readonly command: CommandSpec | null;
  /** The error, with the command it concerns. */
  constructor(message: string, command: CommandSpec | null) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** Parsed command line: the command, its positional arguments and options. */
export interface CommandLine {
  /** The command (`serve`, `list`…), or "" when none was given. */
  command: string;
  /** Positional arguments after the command. */
  args: string[];
  /** `--name value` options and `--flag`s (value true). */
  options: Map<string, string | true>;
}

/** What parsing found: a command to run, or help to print. */
export type Parsed =
  | { kind: "run"; spec: CommandSpec; line: CommandLine; deprecatedCtl: boolean }
  | { kind: "help"; spec: CommandSpec | null };

const help = { type: "boolean", short: "h" } as const;

/** Parses argv by the command table; throws UsageError on misuse. */
export function parseCommandLine(argv: string[]): Parsed {
  let words = argv;
  let deprecatedCtl = false;
  if (words[0] === "ctl") {
    // The former group: `ctl list` is `list`.
    deprecatedCtl = true;
    words = words.slice(1);
    if (words.length === 0) return { kind: "help", spec: null };
  }
  const [first, ...rest] = words;
  if (first === undefined) throw new UsageError("no command given", null);
  if (first === "help" || first === "--help" || first === "-h") {
    if (rest[0] === undefined) return { kind: "help", spec: null };
    return { kind: "help", spec: commandNamed(rest[0]) };
  }
  if (first.startsWith("-")) throw new UsageError(`the command comes first, before "${first}"`, null);
  let spec = findCommand(first);
  let rawArgs = rest;
  if (spec === undefined && (first.includes("/") || first.endsWith(".conf"))) {
    // md_server's form: `mdserver /etc/mdserver/mdserver.conf`
    spec = findCommand("serve")!;
    rawArgs = [first, ...rest];
  }
  if (spec === undefined) spec = commandNamed(first);
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help };
  for (const [name, option] of Object.entries(spec.options)) {
    options[name] = option.short ? { type: option.type, short: option.short } : { type: option.type };
  }
  checkOptions(rawArgs, spec);
  let parsed;
  try {
    parsed = parseArgs({ args: rawArgs, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(`${spec.name}: ${(error as Error).message.split("\n")[0]}`, spec);
  }
  if (parsed.values.help) return { kind: "help", spec };
  const args = parsed.positionals;
  const required = spec.positionals.filter((positional) => positional.required);
  if (args.length < required.length) {
    throw new UsageError(`${spec.name} needs ${required[args.length]!.name}`, spec);
  }
  if (args.length > spec.positionals.length) {
    throw new UsageError(`${spec.name} takes no argument "${args[spec.positionals.length]}"`, spec);
  }
  const map = new Map<string, string | true>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === "string") map.set(name, value);
    else if (value === true) map.set(name, true);
  }
  return { kind: "run", spec, line: { command: spec.name, args, options: map }, deprecatedCtl };
}

function commandNamed(name: string): CommandSpec {
  const spec = findCommand(name);
  if (spec) return spec;
  const near = nearestWord(name, COMMANDS.map((command) => command.name));
  throw new UsageError(`unknown command "${name}"${near ? `; did you mean "${near}"?` : ""}`, null);
}

/** Each option token checked against the command's table first, so a mistake is named plainly. */
function checkOptions(args: string[], spec: CommandSpec): void {
  const { tokens } = parseArgs({ args, strict: false, allowPositionals: true, tokens: true, options: {} });
  const shorts = new Map(
    Object.entries(spec.options).flatMap(([name, option]) => option.short ? [[option.short, name]] : []),
  );
  shorts.set("h", "help");
  for (const [index, token] of tokens.entries()) {
    if (token.kind !== "option") continue;
    const name = token.rawName.startsWith("--") ? token.name : shorts.get(token.name);
    const option = name === "help" ? { type: "boolean" } : name === undefined ? undefined : spec.options[name];
    if (option === undefined) {
      const near = nearestWord(token.name, Object.keys(spec.options));
      throw new UsageError(
        `${spec.name} has no option "${token.rawName}"${near ? `; did you mean "--${near}"?` : ""}`,
        spec,
      );
    }
    if (option.type === "boolean" && token.inlineValue) throw new UsageError(`option --${name} takes no value`, spec);
    if (option.type === "string" && token.value === undefined) {
      const next = tokens[index + 1];
      if (next === undefined || next.kind !== "positional") {
        throw new UsageError(`option --${name} needs a value`, spec);
      }
    }
  }
}

/** The synopsis of a command: `mdserver show INSTANCE [options]`. */
export function synopsis(spec: CommandSpec): string {
  const positionals = spec.positionals.map((positional) =>
    positional.required ? positional.name : `[${positional.name}]`
  );
  return ["mdserver", spec.name, ...positionals, "[options]"].join(" ");
}

/** A command's help: synopsis, what it does, its options and an example. */
export function commandHelp(spec: CommandSpec): string {
  const rows: [string, string][] = Object.entries(spec.options).map(([name, option]) => [
    `${option.short ? `-${option.short}, ` : "    "}--${name}${option.value ? ` ${option.value}` : ""}`,
    option.help,
  ]);
  rows.push(["-h, --help", "print this help"]);
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    `usage: ${synopsis(spec)}`,
    "",
    spec.summary,
    "",
    "options:",
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`),
    "",
    "example:",
    `  ${spec.example}`,
  ].join("\n");
}

/** The top-level help: every command with its summary, and the exit statuses. */
export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return [
    "usage: mdserver <command> [options]",
    "",
    "commands:",
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    "",
    "`mdserver help COMMAND` or `mdserver COMMAND --help` prints a command's options and an example.",
    "`mdserver ctl COMMAND` is the former spelling of `mdserver COMMAND` (deprecated).",
    "",
    "exit status: 0 done, 1 the operation failed, 2 usage error.",
  ].join("\n");
}
