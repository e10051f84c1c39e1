/**
 * md_server 0.6.x, the Python service mdserver replaces, as a server under
 * test: a configuration in a temporary folder, the process started from a
 * checkout of its source, and the addresses it allocated. It runs with
 * Debian's python3 (`python3-bottle`, `python3-xmltodict`) exactly as its
 * `mdserver` entry point does (`mdserver.server:main` with the configuration
 * file as argument): bottle's default server, one process, one thread.
 *
 * Everything it touches stays in the temporary folder and on loopback: it
 * listens on 127.0.0.1, its database, log file, userdata and the dnsmasq
 * files it generates are in the folder, and its dnsmasq run directory there
 * holds no pid file, so its "HUP dnsmasq" after an upload signals nothing.
 * md_server never starts dnsmasq itself (systemd does that in production).
 *
 * @module
 */

import { join } from "node:path";
import { PROJECT_DIR, type ServerProcess, startServerProcess } from "./server_process.ts";

/** The interpreter md_server runs with: Debian's, where python3-bottle and python3-xmltodict install. */
export const PYTHON = "/usr/bin/python3";

/** The dated EC2 versions md_server is configured to serve: its default and the one cloud-init asks first. */
export const MD_SERVER_EC2_VERSIONS = "2009-04-04, 2021-03-23";

/** What was found in a checkout of md_server. */
export interface MdServerCheckout {
  /** The folder holding the `mdserver` package. */
  path: string;
  /** Its version, as `mdserver.version.VERSION` gives it. */
  version: string;
  /** The user md_server's dnsmasq set-up chowns its folders to (the one running the bench). */
  user: string;
}

/** A temporary md_server installation: configuration, database, log and userdata in one folder. */
export interface MdServerSetup {
  dir: string;
  configFile: string;
  /** md_server's database, a JSON list of instances (written on every upload). */
  dbFile: string;
  logFile: string;
  port: number;
  remove(): Promise<void>;
}

const decoder = new TextDecoder();

/**
 * Checks that `path` holds md_server 0.6.x and that its Python dependencies
 * import; throws with what is missing otherwise.
 */
export async function inspectMdServer(path: string): Promise<MdServerCheckout> {
  const script = [
    "import os, pwd, bottle, xmltodict",
    "import mdserver.version as version",
    "print(version.VERSION)",
    "print(pwd.getpwuid(os.getuid()).pw_name)",
  ].join("\n");
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(PYTHON, {
      args: ["-c", script],
      cwd: path,
      env: { PYTHONPATH: path, PYTHONDONTWRITEBYTECODE: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(`cannot run ${PYTHON} in ${path} for md_server: ${(error as Error).message}`);
  }
  if (!output.success) {
    throw new Error(
      `${path} is not a usable md_server checkout (it needs its mdserver/ package and ` +
        `apt-get install python3-bottle python3-xmltodict): ${decoder.decode(output.stderr).trim().split("\n").at(-1)}`,
    );
  }
  const [version = "", user = ""] = decoder.decode(output.stdout).trim().split("\n");
  if (!/^0\.6\./.test(version)) throw new Error(`${path} holds md_server ${version}; the comparison needs 0.6.x`);
  return { path, version, user };
}

/**
 * The sample template config/userdata/base.yaml in what md_server's
 * templates can be given: `fqdn` written as `{{hostname}}.{{domain}}`
 * (`domain` through `_config_items_`), and the three lines with values
 * md_server does not hand a template (instance_id, ipv4, mac) replaced by
 * one with the host name.
 */
export async function mdServerTemplate(): Promise<string> {
  const sample = await Deno.readTextFile(join(PROJECT_DIR, "config/userdata/base.yaml"));
  let replaced = false;
  const lines = sample.replaceAll("{{fqdn}}", "{{hostname}}.{{domain}}").split("\n").flatMap((line) => {
    const match = /^(\s+)(instance-id|ipv4|mac): \{\{\w+\}\}$/.exec(line);
    if (!match) return [line];
    if (replaced) return [];
    replaced = true;
    return [`${match[1]}hostname: {{hostname}}`];
  });
  return lines.join("\n");
}

/** A free TCP port on 127.0.0.1 (md_server prints the port it was given, so it cannot be 0). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Writes md_server's configuration into a new temporary folder: listening on
 * 127.0.0.1, the pool 127.90.0.0/16 on loopback (as mdserver's bench), the
 * same public key and default template as mdserver's, every path inside the
 * folder. Logging stays at md_server's defaults (info to stdout and to its
 * log file, bottle's access line on stderr).
 */
export async function prepareMdServer(checkout: MdServerCheckout, publicKey: string): Promise<MdServerSetup> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-bench-md_server-" });
  try {
    await Deno.mkdir(join(dir, "userdata"));
    await Deno.mkdir(join(dir, "run"));
    await Deno.writeTextFile(join(dir, "userdata/base.yaml"), await mdServerTemplate());
    const port = freePort();
    const configFile = join(dir, "mdserver.conf");
    const dbFile = join(dir, "db_file.json");
    const logFile = join(dir, "mdserver.log");
    await Deno.writeTextFile(
      configFile,
      `[mdserver]
listen_address = 127.0.0.1
port = ${port}
logfile = ${logFile}
userdata_dir = ${join(dir, "userdata")}
default_template = ${join(dir, "userdata/base.yaml")}
db_file = ${dbFile}

[public-keys]
default = ${publicKey}

[dnsmasq]
user = ${checkout.user}
base_dir = ${join(dir, "dnsmasq")}
run_dir = ${join(dir, "run")}
net_address = 127.90.0.0
net_prefix = 16
gateway = 127.90.0.1
interface = lo
domain = bench.test

[service]
location = bench
ec2_versions = ${MD_SERVER_EC2_VERSIONS}

[template-data]
_config_items_ = dnsmasq.domain
`,
    );
    return { dir, configFile, dbFile, logFile, port, remove: () => Deno.remove(dir, { recursive: true }) };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/**
 * Starts md_server (`python3 -m mdserver.server CONFIG`, its `mdserver`
 * script) and waits until it answers `GET /service/name`: bottle prints
 * "Listening on" before it binds.
 */
export async function startMdServer(checkout: MdServerCheckout, setup: MdServerSetup): Promise<ServerProcess> {
  const server = await startServerProcess({
    command: PYTHON,
    args: ["-m", "mdserver.server", setup.configFile],
    cwd: setup.dir,
    env: { PYTHONPATH: checkout.path, PYTHONDONTWRITEBYTECODE: "1", PYTHONUNBUFFERED: "1" },
    ready: /^Listening on (http:\/\/[^ ]+?)\/?$/,
  });
  const deadline = performance.now() + 10_000;
  while (true) {
    try {
      const response = await fetch(`${server.url}/service/name`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return server;
    } catch {
      // not bound yet
    }
    if (performance.now() > deadline) {
      await server.stop();
      throw new Error(`md_server did not answer ${server.url}/service/name within 10 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The address md_server allocated to each domain, by domain name, from its database file. */
export async function mdServerAddresses(setup: MdServerSetup): Promise<Map<string, string>> {
  const entries = JSON.parse(await Deno.readTextFile(setup.dbFile)) as {
    domain_name: string;
    mds_ipv4: string | null;
  }[];
  return new Map(
    entries.filter((entry) => entry.mds_ipv4 !== null).map((entry) => [entry.domain_name, entry.mds_ipv4!]),
  );
}
