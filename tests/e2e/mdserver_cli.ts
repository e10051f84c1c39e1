/**
 * The operator's mdserver command, run inside the e2e's namespace as an
 * operator runs it on the host: the `ctl` permission set, the default
 * configuration /etc/mdserver/mdserver.conf (the namespace's), virsh
 * talking to the namespace's libvirtd. The set names the production paths
 * (/run/mdserver/admin.sock); the command loads the whole configuration,
 * whose state, templates and socket are under the run's folder, so flags
 * add that folder (a flag replaces the set's list of its kind, so
 * /etc/mdserver is named again).
 *
 * @module
 */

import { inNamespace } from "./netns.ts";
import { type CommandResult, runCommand } from "./process.ts";
import { ADMIN_SOCKET, NAMESPACE, ROOT, WORK } from "./settings.ts";

/** Runs `mdserver COMMAND ARGS…`; resolves with what it did. */
export async function mdserverCommand(args: string[], timeoutMs = 60_000): Promise<CommandResult> {
  return await runCommand(
    ...inNamespace(NAMESPACE, "deno", [
      "run",
      "-q",
      "--no-prompt",
      "-P=ctl",
      `--allow-read=/etc/mdserver,${WORK}`,
      `--allow-write=${ADMIN_SOCKET}`,
      `--allow-net=127.0.0.1,unix:${ADMIN_SOCKET}`,
      "main.ts",
      ...COMMAND_PREFIX,
      ...args,
    ]),
    { cwd: ROOT, timeoutMs },
  );
}

/** Runs `mdserver COMMAND ARGS…` and returns its standard output; throws unless it exits 0. */
export async function mustMdserver(args: string[], timeoutMs = 60_000): Promise<string> {
  const result = await mdserverCommand(args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(
      `mdserver ${args.join(" ")} exited ${result.code}${result.timedOut ? " (timed out)" : ""}: ${
        (result.stderr || result.stdout).trim().slice(-600)
      }`,
    );
  }
  return result.stdout;
}

/** How main.ts spells the operator commands. */
const COMMAND_PREFIX = ["ctl"];

/**
 * The `<sysinfo>` element a domain needs to find mdserver through NoCloud
 * (`mdserver smbios NAME`): the element alone, checked to be one.
 */
export async function sysinfoElement(name: string): Promise<string> {
  const printed = await mustMdserver(["smbios", name, "--datasource", "nocloud"]);
  const element = /<sysinfo type=[^]*?<\/sysinfo>/.exec(printed)?.[0];
  if (element === undefined) throw new Error(`mdserver smbios ${name} printed no <sysinfo> element: ${printed}`);
  return element;
}

/** `mdserver known-hosts`: the ssh known_hosts lines from the host keys guests phoned home. */
export async function knownHosts(): Promise<string> {
  return await mustMdserver(["known-hosts"]);
}

/** `mdserver gc --virsh` (with --force, which gc asks for when virsh lists no domain at all). */
export async function gcVirsh(force: boolean): Promise<string> {
  return await mustMdserver(["gc", "--virsh", ...(force ? ["--force"] : [])], 120_000);
}
