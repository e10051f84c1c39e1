/**
 * Running Debian's cloud-init Python code as the client: the driver scripts
 * in tests/cloudinit/ act as a guest and print one JSON object. Two clients
 * take part: the system's (bookworm, 22.4.2) and the current one (trixie,
 * 25.x), which tests/cloudinit/fetch_current.sh unpacks into
 * .cache/cloud-init-current/ and which runs through PYTHONPATH.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { requireTool } from "./_requirements.ts";

/** Debian's interpreter: another python3 earlier in PATH may not see Debian's packages. */
export const PYTHON = "/usr/bin/python3";

const CURRENT_ROOT = fileURLToPath(new URL("../.cache/cloud-init-current", import.meta.url));

/** One cloud-init client the conformance tests run. */
export interface CloudInitVersion {
  /** "system" (the installed package) or "current" (trixie's, unpacked in the checkout). */
  id: "system" | "current";
  /** The version its code reports, e.g. "22.4.2"; "not installed" when absent. */
  version: string;
  /** For test names: "cloud-init 22.4.2". */
  label: string;
  /** The dist-packages folder holding its `cloudinit` package. */
  distPackages: string;
  /** PYTHONPATH that makes /usr/bin/python3 import it ("" for the system's). */
  pythonPath: string;
  /** What to do when it is missing. */
  installHint: string;
  /** Whether its `cloud-init schema` validates network-config (`--schema-type network-config`, since 23.x). */
  networkSchema: boolean;
}

/** The version string in a cloudinit/version.py, or null when there is none. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function codeVersion(distPackages: string): Promise<string | null> {
  try {
    const text = await Deno.readTextFile(`${distPackages}/cloudinit/version.py`);
    return /^__VERSION__ = "([^"]+)"/m.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

async function describe(
  id: CloudInitVersion["id"],
  distPackages: string,
  pythonPath: string,
  installHint: string,
): Promise<CloudInitVersion> {
  const found = await codeVersion(distPackages);
  const version = found ?? "not installed";
  const label = found ? `cloud-init ${found}` : `${id} cloud-init (not installed)`;
  const networkSchema = await exists(`${distPackages}/cloudinit/config/schemas/schema-network-config-v2.json`);
  return { id, version, label, distPackages, pythonPath, installHint, networkSchema };
}

/** The clients every conformance test runs against: the system's (22.4.2) and the current one (25.x). */
export const CLOUD_INIT_VERSIONS: readonly CloudInitVersion[] = [
  await describe("system", "/usr/lib/python3/dist-packages", "", "apt-get install cloud-init"),
  await describe(
    "current",
    `${CURRENT_ROOT}/usr/lib/python3/dist-packages`,
    `${CURRENT_ROOT}/usr/lib/python3/dist-packages`,
    "tests/cloudinit/fetch_current.sh",
  ),
];

/** Null when this client's datasource module is installed, else the reason (a failure in CI). */
export function cloudInitMissing(version: CloudInitVersion, datasource: string): Promise<string | null> {
  return requireTool(`${version.id} cloud-init (${version.installHint})`, [
    `${version.distPackages}/cloudinit/sources/${datasource}.py`,
    PYTHON,
  ]);
}

/** Each client with the reason it is missing (null when it is there), for one Deno.test per client. */
export async function cloudInitClients(
  datasource: string,
): Promise<{ client: CloudInitVersion; missing: string | null }[]> {
  const clients = [];
  for (const client of CLOUD_INIT_VERSIONS) {
    clients.push({ client, missing: await cloudInitMissing(client, datasource) });
  }
  return clients;
}

function pythonEnv(version: CloudInitVersion): Record<string, string> {
  // An empty PYTHONPATH is ignored by Python: the system's client then imports from dist-packages.
  return { PYTHONPATH: version.pythonPath };
}

/** Runs tests/cloudinit/<driver> with args under this client; asserts it exits 0 and returns its JSON and stderr. */
export async function runDriver(
  version: CloudInitVersion,
  driver: string,
  args: string[],
  // deno-lint-ignore no-explicit-any
): Promise<{ result: any; stderr: string }> {
  const path = fileURLToPath(new URL(`./cloudinit/${driver}`, import.meta.url));
  const output = await new Deno.Command(PYTHON, {
    args: [path, ...args],
    env: pythonEnv(version),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `${version.label} ${driver}: ${stderr}`);
  return { result: JSON.parse(new TextDecoder().decode(output.stdout)), stderr };
}

/** Runs this client's `cloud-init ARGS` (its cloudinit.cmd.main); returns exit code and output. */
export async function runCloudInit(
  version: CloudInitVersion,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(PYTHON, {
    args: ["-m", "cloudinit.cmd.main", ...args],
    env: pythonEnv(version),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}
