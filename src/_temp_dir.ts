/**
 * Temporary folders for unit tests, removed when the test process ends, so
 * tests that only read what they wrote need no cleanup of their own.
 *
 * @module
 */

const made: string[] = [];

globalThis.addEventListener("unload", () => {
  for (const dir of made) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // already gone
    }
  }
});

/** A new temporary folder, removed at exit. */
export async function tempDir(prefix = "mdserver-test-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  made.push(dir);
  return dir;
}
