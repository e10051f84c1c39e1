/**
 * mdserver's admin API over its unix socket, for the end-to-end test. The
 * socket is a file, so the test reaches the admin API inside the namespace
 * from outside it, without any TCP permission (and so without any chance of
 * talking to an mdserver that runs on the host itself). Requests go through
 * the HTTP/1.1 client the CLI and the hook use (src/admin/http1.ts).
 *
 * @module
 */

import { http1Request } from "../../src/admin/http1.ts";

/** An answer from the admin API. */
export interface AdminAnswer {
  status: number;
  body: string;
}

/** Sends one request over the unix socket at path; times out after timeoutMs. */
export async function adminCall(
  socket: string,
  method: string,
  path: string,
  options: { body?: string; timeoutMs?: number } = {},
): Promise<AdminAnswer> {
  const answer = await http1Request({ transport: "unix", path: socket }, {
    method,
    path,
    host: "mdserver-admin",
    ...(options.body === undefined ? {} : { body: options.body }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
  });
  return { status: answer.status, body: answer.body };
}

/** GET path and parse the JSON body; throws on a non-2xx status. */
export async function adminJson<T>(socket: string, path: string): Promise<T> {
  const answer = await adminCall(socket, "GET", path);
  if (answer.status < 200 || answer.status > 299) {
    throw new Error(`admin GET ${path}: ${answer.status} ${answer.body.trim().slice(0, 300)}`);
  }
  return JSON.parse(answer.body) as T;
}
