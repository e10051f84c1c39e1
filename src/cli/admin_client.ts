/**
 * The one way the CLI talks to the running service: callAdmin() reads the
 * admin endpoint from the configuration, sends one request and turns every
 * failure into an AdminError an operator can act on (the thing, the fix;
 * never a method, a status code or a transport error class).
 *
 * @module
 */

import { type AdminEndpoint, adminLocation, adminRequest, readAdminEndpoint } from "../admin/endpoint.ts";

/** The admin API refused or could not be reached; the message is for the operator. */
export class AdminError extends Error {
  /** Whether the service said the thing asked for does not exist. */
  readonly notFound: boolean;
  /** The operator's message. */
  constructor(message: string, notFound = false) {
    super(message);
    this.name = "AdminError";
    this.notFound = notFound;
  }
}

/** One request of the CLI to the admin API. */
export interface AdminCall {
  /** The configuration file naming the admin endpoint. */
  configFile: string;
  /** "GET", "POST" or "DELETE". */
  method?: string;
  /** The path (`/v1/instances`). */
  path: string;
  /** A JSON body. */
  body?: unknown;
  /** A domain's XML as the body (what the hook uploads), instead of JSON. */
  xml?: string;
  /** What is asked about, for messages (`instance "web01"`). */
  subject?: string;
  /** Longest wait; default 60 s. */
  timeoutMs?: number;
  /** Reads the endpoint; default readAdminEndpoint. */
  readEndpoint?: (file: string) => Promise<AdminEndpoint>;
}

/** Sends one request; resolves to the answer when it succeeded, else throws AdminError. */
export async function callAdmin(call: AdminCall): Promise<Response> {
  const endpoint = await (call.readEndpoint ?? readAdminEndpoint)(call.configFile);
  const where = adminLocation(endpoint);
  let response: Response;
  try {
    response = await adminRequest(endpoint, call.path, {
      method: call.method ?? "GET",
      signal: AbortSignal.timeout(call.timeoutMs ?? 60_000),
      ...(call.xml !== undefined
        ? { body: call.xml, headers: { "content-type": "application/xml" } }
        : call.body === undefined
        ? {}
        : { body: JSON.stringify(call.body), headers: { "content-type": "application/json" } }),
    });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) throw error;
    throw new AdminError(
      `cannot reach mdserver's admin API at ${where} (from ${call.configFile}): is the service running? ` +
        "(systemctl status mdserver)",
    );
  }
  if (response.ok) return response;
  const text = reasonOf(await response.text());
  if (response.status === 404) {
    throw new AdminError(
      call.subject ? `no ${call.subject} (see: mdserver list)` : `the service cannot answer this: ${text}`,
      true,
    );
  }
  throw new AdminError(
    `the service refused${call.subject ? ` for ${call.subject}` : ""}: ${text || "no reason given"}`,
  );
}

/** The service's reason: the `error` of a JSON answer, else the first line of the text. */
function reasonOf(body: string): string {
  try {
    const parsed = JSON.parse(body);
    if (typeof parsed?.error === "string") return parsed.error;
  } catch {
    // not JSON: the text itself
  }
  return body.trim().split("\n")[0] ?? "";
}
