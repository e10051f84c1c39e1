/**
 * Running Debian's cloud-init Python code as the client: the driver scripts
 * in tests/cloudinit/ act as a guest and print one JSON object.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { requireTool } from "./_requirements.ts";

/** Debian's interpreter: another python3 earlier in PATH may not see Debian's packages. */
export const PYTHON = "/usr/bin/python3";

/** Null when cloud-init's datasource module is installed, else the reason (a failure in CI). */
export function cloudInitMissing(datasource: string): Promise<string | null> {
  return requireTool("cloud-init (Debian python3-cloudinit)", [
    `/usr/lib/python3/dist-packages/cloudinit/sources/${datasource}.py`,
    PYTHON,
  ]);
}

/** Runs tests/cloudinit/<driver> with args; asserts it exits 0 and returns its JSON and its stderr. */
export async function runDriver(
  driver: string,
  args: string[],
  // deno-lint-ignore no-explicit-any
): Promise<{ result: any; stderr: string }> {
  const path = fileURLToPath(new URL(`./cloudinit/${driver}`, import.meta.url));
  const output = await new Deno.Command(PYTHON, { args: [path, ...args], stdout: "piped", stderr: "piped" }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  return { result: JSON.parse(new TextDecoder().decode(output.stdout)), stderr };
}
