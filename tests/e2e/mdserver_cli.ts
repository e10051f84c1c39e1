/**
 * The operator's mdserver command, the one `install` put in
 * /usr/local/bin, run inside the e2e's namespace as an operator runs it on
 * the host: each subcommand under its production permission
 * set, the default configuration /etc/mdserver/mdserver.conf and the admin
 * socket /run/mdserver/admin.sock (the namespace's, inNamespaceAsHost),
 * virsh talking to the namespace's libvirtd.
 *
 * @module
 */

import { type CommandResult, runCommand } from "./process.ts";
import { inNamespaceAsHost, INSTALL_ROOT, ROOT } from "./settings.ts";

/** The installed command. */
export const MDSERVER_COMMAND = `${INSTALL_ROOT}/usr/local/bin/mdserver`;

/** Runs `mdserver COMMAND ARGS…`; resolves with what it did. */
export async function mdserverCommand(args: string[], timeoutMs = 60_000): Promise<CommandResult> {
  return await runCommand(...inNamespaceAsHost("sh", [MDSERVER_COMMAND, ...args]), { cwd: ROOT, timeoutMs });
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

/** `mdserver known-hosts`: the ssh known_hosts lines from the host keys guests phoned home. */
export async function knownHosts(): Promise<string> {
  return await mustMdserver(["known-hosts"]);
}

/** `mdserver gc --virsh` (with --force, which gc asks for when virsh lists no domain at all). */
export async function gcVirsh(force: boolean): Promise<string> {
  return await mustMdserver(["gc", "--virsh", ...(force ? ["--force"] : [])], 120_000);
}

/**
 * Gives a defined domain the `<sysinfo>` that makes a stock image find
 * mdserver through NoCloud, with the README's lines (Operating it: each
 * domain's sysinfo): `mdserver smbios NAME --xml` into a file, the
 * domain's XML with `<smbios mode='sysinfo'/>` put into its `<os>` and the
 * element after it, `virsh define` of that. Resolves with the new XML.
 */
export async function addSysinfo(name: string, dir: string): Promise<string> {
  const script = [
    "set -eu",
    'cd "$1"',
    `${MDSERVER_COMMAND} smbios "$0" --xml > "$0-sysinfo.xml"`,
    `virsh dumpxml --inactive "$0" | sed -e "/<\\/os>/i <smbios mode='sysinfo'/>" -e "/<\\/os>/r $0-sysinfo.xml" > "$0.xml"`,
    'virsh define "$0.xml" >/dev/null',
  ].join("\n");
  const result = await runCommand(...inNamespaceAsHost("bash", ["-c", script, name, dir]), {
    cwd: ROOT,
    timeoutMs: 60_000,
  });
  if (result.code !== 0) {
    throw new Error(`adding <sysinfo> to ${name} failed: ${(result.stderr || result.stdout).trim()}`);
  }
  return await Deno.readTextFile(`${dir}/${name}.xml`);
}

/**
 * Gives a defined domain the config drive mdserver keeps, as
 * docs/configdrive.md tells an operator: `mdserver configdrive NAME` prints
 * the `<disk>` (IDE: the e2e's domains are `machine='pc'`), which goes into
 * the domain's `<devices>`, `virsh define` of that. Resolves with the new XML.
 */
export async function addConfigDrive(name: string, dir: string): Promise<string> {
  const script = [
    "set -eu",
    'cd "$1"',
    `${MDSERVER_COMMAND} configdrive "$0" --bus ide --dev hdc > "$0-configdrive.xml"`,
    `virsh dumpxml --inactive "$0" | sed -e "/<devices>/r $0-configdrive.xml" > "$0.xml"`,
    'virsh define "$0.xml" >/dev/null',
  ].join("\n");
  const result = await runCommand(...inNamespaceAsHost("bash", ["-c", script, name, dir]), {
    cwd: ROOT,
    timeoutMs: 60_000,
  });
  if (result.code !== 0) {
    throw new Error(`adding the config drive to ${name} failed: ${(result.stderr || result.stdout).trim()}`);
  }
  return await Deno.readTextFile(`${dir}/${name}.xml`);
}

/**
 * `mdserver register NAME`, then `mdserver password NAME --stdin` with
 * password on its standard input (from a file in dir): the instance exists before its first
 * start, with the password its first boot sets. Resolves with register's table.
 */
export async function registerWithPassword(name: string, password: string, dir: string): Promise<string> {
  const registered = await mustMdserver(["register", name]);
  // From a file, as an operator would pipe it: never an argument, which ps shows.
  const file = `${dir}/password`;
  await Deno.writeTextFile(file, `${password}\n`, { mode: 0o600 });
  const script = `${MDSERVER_COMMAND} password "$0" --stdin < "$1"`;
  const result = await runCommand(...inNamespaceAsHost("sh", ["-c", script, name, file]), {
    cwd: ROOT,
    timeoutMs: 60_000,
  });
  if (result.code !== 0) {
    throw new Error(
      `mdserver password ${name} --stdin exited ${result.code}: ${(result.stderr || result.stdout).trim()}`,
    );
  }
  return `${registered.trim()}\n${result.stdout.trim()}`;
}
