/**
 * The CLI's dependencies for tests that run `runMain` in process: the real
 * service, output captured, no environment, no programs, no signal handlers.
 *
 * @module
 */

import type { CliDeps } from "../src/cli/main.ts";
import { startService } from "../src/service/mod.ts";

/** What `runMain` printed, and the dependencies that caught it; `stopSignal` stands in for Ctrl-C. */
export function captureCli(stopSignal?: AbortSignal): { deps: CliDeps; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const deps: CliDeps = {
    print: (text) => out.push(text),
    printError: (text) => err.push(text),
    env: () => undefined,
    projectDir: "/nonexistent/project/",
    execPath: Deno.execPath(),
    runProgram: () => Promise.reject(new Error("no program runs in this test")),
    startService,
    onSignal: () => {},
    ...(stopSignal ? { stopSignal } : {}),
  };
  return { deps, out, err };
}
