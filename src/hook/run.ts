/**
 * The libvirt qemu hook's work, run by hook.ts: which operations upload or
 * report a stop, reading the domain XML from stdin, the request to the
 * admin API, giving a built config drive to QEMU's user
 * (config_drive_owner.ts), and the one line of stderr on failure. It
 * imports only admin/endpoint.ts (with its HTTP/1.1 client, admin/http1.ts),
 * io/read_text.ts and config_drive_owner.ts, which import only the INI
 * reader and the include rules (node:fs only when there is an image to
 * give): the hook starts a process per domain start. For the same reason it
 * uses neither fetch, nor streams, nor setTimeout: each costs a new process
 * milliseconds of start-up the first time (see docs/hook.md#speed).
 *
 * @module
 */

import {
  type AdminEndpoint,
  adminExchange,
  DEFAULT_CONFIG_FILE,
  type Http1Answer,
  readAdminEndpoint,
} from "../admin/endpoint.ts";
import { type ByteSource, NotUtf8Error, readTextFrom, TextTooLargeError } from "../io/read_text.ts";
import { ownConfigDrive } from "./config_drive_owner.ts";

/** Everything the hook does, from process start, fits in this many milliseconds. */
export const HOOK_BUDGET_MS = 2000;

/** Largest domain XML read from stdin; the admin API refuses larger bodies too. */
export const MAX_XML_BYTES = 1024 * 1024;

/** What the hook does for an operation. */
export type HookAction = "upload" | "stopped" | "ignore";

/** The action for libvirt's `<operation> <sub-operation>`. */
export function hookAction(
  operation: string | undefined,
  subOperation: string | undefined,
): HookAction {
  if (
    subOperation === "begin" &&
    (operation === "prepare" || operation === "migrate" ||
      operation === "restore")
  ) {
    return "upload";
  }
  if (operation === "release" && subOperation === "end") return "stopped";
  return "ignore";
}

/** What runHook needs from the outside world. */
export interface HookDeps {
  /** The configuration file to read the admin endpoint from. */
  configFile: string;
  /** The domain XML (libvirt's stdin, `Deno.stdin`); read only for uploads. */
  stdin: ByteSource;
  /** Aborts when the budget is spent. */
  signal: AbortSignal;
  /** Reads the admin endpoint; default readAdminEndpoint. */
  readEndpoint?: (file: string) => Promise<AdminEndpoint>;
}

/**
 * Runs the hook for libvirt's arguments. Resolves to null when there is
 * nothing to report, or to the one-line reason the call failed; never throws.
 */
export async function runHook(
  args: string[],
  deps: HookDeps,
): Promise<string | null> {
  const [domain, operation, subOperation] = args;
  const action = hookAction(operation, subOperation);
  if (action === "ignore") return null;
  const what = `${domain ?? "?"} ${operation} ${subOperation}`;
  if (!domain) return `${what}: no domain name in the arguments`;
  try {
    const endpoint = await (deps.readEndpoint ?? readAdminEndpoint)(
      deps.configFile,
    );
    let response: Http1Answer;
    let xml = "";
    if (action === "upload") {
      xml = await readXml(deps.stdin, deps.signal);
      // On the destination of a live migration: the guest keeps running, its boot state stays.
      const path = operation === "migrate" ? "/v1/instances?migration=incoming" : "/v1/instances";
      response = await adminExchange(endpoint, path, {
        method: "POST",
        body: xml,
        headers: { "content-type": "application/xml" },
        signal: deps.signal,
      });
    } else {
      response = await adminExchange(
        endpoint,
        `/v1/instances/${encodeURIComponent(domain)}/stopped`,
        {
          method: "POST",
          signal: deps.signal,
        },
      );
    }
    const body = response.body;
    // Registered, but something the domain asked for is missing (its config drive was not built).
    if (response.status >= 200 && response.status < 300) {
      const warning = response.headers.get("x-mdserver-warning") ?? null;
      // The image was built by the unprivileged service; QEMU's user gets it here, before QEMU opens it.
      const problem = warning ?? (action === "upload" ? await ownConfigDrive(deps.configFile, xml, body) : null);
      return problem === null ? null : `${what}: ${problem}`;
    }
    const reason = body.trim().split("\n")[0] || response.statusText;
    return `${what}: ${action === "upload" ? "not uploaded" : "stop not reported"}: ${response.status} ${reason}`;
  } catch (error) {
    return `${what}: ${action === "upload" ? "not uploaded" : "stop not reported"}: ${describe(error, deps.signal)}`;
  }
}

/** Reads the domain XML from stdin, up to MAX_XML_BYTES; throws with a short reason. */
async function readXml(
  stdin: ByteSource,
  signal: AbortSignal,
): Promise<string> {
  let xml: string;
  try {
    xml = await readTextFrom(stdin, { limit: MAX_XML_BYTES, what: "domain XML on stdin", signal });
  } catch (error) {
    if (error instanceof TextTooLargeError) throw new Error(`domain XML on stdin is over ${MAX_XML_BYTES} bytes`);
    if (error instanceof NotUtf8Error) throw new Error("stdin is not UTF-8 text");
    throw error;
  }
  // Not worth a round trip: the server checks the XML itself.
  if (xml.trim() === "") throw new Error("no domain XML on stdin");
  if (!xml.trimStart().startsWith("<")) {
    throw new Error("stdin is not domain XML");
  }
  return xml;
}

/** A failure as one short line; the message is never used to decide anything. */
function describe(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return `timed out after ${HOOK_BUDGET_MS} ms`;
  if (!(error instanceof Error)) return String(error);
  return error.message.replace(/\s+/g, " ").trim();
}

/** Runs the hook for this process's arguments and stdin within the budget, then exits 0. */
export function main(): Promise<never> {
  const encoder = new TextEncoder();
  let reported = false;
  const report = (line: string | null) => {
    if (line === null || reported) return;
    reported = true;
    const text = line.replace(/[\r\n]+/g, " ");
    Deno.stderr.writeSync(encoder.encode(`mdserver-hook: ${text}\n`));
  };
  // The budget counts from process start, runtime start-up included. Work
  // is aborted a little early so that reporting and exiting fit in it too.
  // AbortSignal.timeout, not setTimeout: the first setTimeout loads Deno's
  // Node timers (about 7 ms).
  const remaining = HOOK_BUDGET_MS - performance.now();
  const budget = AbortSignal.timeout(Math.max(1, remaining - 150));
  // If something does not heed the abort, leave anyway.
  const watchdog = AbortSignal.timeout(Math.max(1, remaining));
  watchdog.addEventListener("abort", () => {
    report(
      `${Deno.args.slice(0, 3).join(" ")}: timed out after ${HOOK_BUDGET_MS} ms`,
    );
    Deno.exit(0);
  });

  let configFile = DEFAULT_CONFIG_FILE;
  try {
    configFile = Deno.env.get("MDSERVER_CONFIG") || DEFAULT_CONFIG_FILE;
  } catch {
    // No env permission: use the default.
  }
  return runHook(Deno.args, {
    configFile,
    stdin: Deno.stdin,
    signal: budget,
  })
    .catch((error) => `${Deno.args.slice(0, 3).join(" ")}: ${describe(error, budget)}`)
    .then((line) => {
      report(line);
      return Deno.exit(0);
    });
}
