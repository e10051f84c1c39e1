/**
 * What a test needs from the machine. In CI (`CI=true`) a missing tool or
 * privilege is a failure, never a skip; elsewhere the test is skipped with
 * a one-line reason.
 *
 * @module
 */

const inCi = Deno.env.get("CI") === "true";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Checks that every path exists; returns null when all do, else the reason (throws in CI). */
export async function requireTool(what: string, paths: string[]): Promise<string | null> {
  for (const path of paths) {
    if (!(await exists(path))) return missing(`${what}: ${path} not found`);
  }
  return null;
}

/** Checks that the tests run as root; returns null when they do, else the reason (throws in CI). */
export function requireRoot(what: string): string | null {
  return Deno.uid() === 0 ? null : missing(`${what}: needs root`);
}

function missing(reason: string): string {
  if (inCi) throw new Error(`required for CI: ${reason}`);
  console.warn(`skipping: ${reason}`);
  return reason;
}
