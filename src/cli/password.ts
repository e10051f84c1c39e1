/**
 * `mdserver password INSTANCE`: generates a password for the guest and
 * prints it (the one time it is shown), or with `--stdin` sets the first
 * line of standard input (never an argument, which `ps` would show), with
 * `--show-encrypted` prints the password the guest posted (cloudbase-init:
 * encrypted with its SSH key, base64), or with `--remove` removes both. Through the admin API, which keeps the
 * SHA-512 crypt hash for good and the clear text until it is delivered (the
 * config drive is rebuilt at once; docs/configdrive.md).
 *
 * @module
 */

import { readText } from "../io/read_text.ts";
import { AdminError, callAdmin } from "./admin_client.ts";
import { UsageError } from "./args.ts";
import { findCommand } from "./commands.ts";
import type { CtlDeps, CtlLine } from "./ctl.ts";

/** Longest standard input read for `--stdin`. */
const MAX_STDIN_BYTES = 4096;

/** What `password` needs besides ctl's dependencies. */
export interface PasswordDeps extends CtlDeps {
  /** Standard input, read for `--stdin`; default Deno.stdin. */
  stdin?: ReadableStream<Uint8Array>;
}

/** Reads the password: the first line of standard input. */
async function readPassword(stdin: ReadableStream<Uint8Array>): Promise<string> {
  const text = await readText(stdin, { limit: MAX_STDIN_BYTES, what: "standard input" });
  const password = text.split(/\r?\n/)[0] ?? "";
  if (password === "") throw new UsageError("password --stdin read no password (an empty first line)", null);
  return password;
}

/** Runs `password INSTANCE [--stdin | --show-encrypted | --remove]`; returns the exit code. */
export async function runPassword(line: CtlLine, deps: PasswordDeps): Promise<number> {
  const ref = line.args[1];
  const spec = findCommand("password") ?? null;
  if (!ref) throw new UsageError("password needs INSTANCE", spec);
  const chosen = ["stdin", "show-encrypted", "remove"].filter((name) => line.options.has(name));
  if (chosen.length > 1) throw new UsageError(`password takes one of --stdin, --show-encrypted and --remove`, spec);
  const path = `/v1/instances/${encodeURIComponent(ref)}/password`;
  const call = {
    configFile: deps.configFile,
    path,
    subject: `instance "${ref}"`,
    ...(deps.readEndpoint ? { readEndpoint: deps.readEndpoint } : {}),
  };
  if (line.options.has("show-encrypted")) {
    const answer = await (await callAdmin(call)).json();
    if (answer.posted_password === null) throw new AdminError(`${answer.name} has posted no password`, true);
    // Alone on stdout, for `| base64 -d | openssl pkeyutl -decrypt -inkey KEY`.
    deps.print(answer.posted_password.encrypted);
    return 0;
  }
  if (line.options.has("remove")) {
    const answer = await (await callAdmin({ ...call, method: "DELETE" })).json();
    deps.print(`password of ${answer.name} removed${driveNote(answer.config_drive)}`);
    return 0;
  }
  // No body: the service generates one.
  const body = line.options.has("stdin")
    ? { body: { password: await readPassword(deps.stdin ?? Deno.stdin.readable) } }
    : {};
  const answer = await (await callAdmin({ ...call, method: "POST", ...body })).json();
  // A generated password is printed alone on stdout, so that a script can take it.
  if (answer.generated) deps.print(answer.password);
  else deps.print(`password of ${answer.name} set${driveNote(answer.config_drive)}`);
  return 0;
}

function driveNote(state: string | undefined): string {
  if (state === "built") return "; its config drive was rebuilt";
  if (state === "failed") return "; its config drive could not be rebuilt (see the mdserver log)";
  return "";
}
