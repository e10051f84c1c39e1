/**
 * Errors that become HTTP responses, and the one function that turns any
 * thrown value into a response.
 *
 * @module
 */

import type { Logger } from "../log/log.ts";

/** An error with the status and one-line reason to answer. */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.headers = headers;
  }
}

/** A plain-text response. */
export function textResponse(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** A JSON response. */
export function jsonResponse(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

/**
 * Turns a thrown value into a response: HttpError and errors carrying a
 * numeric `status` answer with their message; anything else is a 500 whose
 * cause goes to the log, never to the client.
 */
export function errorToResponse(error: unknown, log: Logger, context: string): Response {
  if (error instanceof HttpError) {
    return textResponse(error.message + "\n", error.status, error.headers);
  }
  const status = (error as { status?: unknown })?.status;
  if (typeof status === "number" && status >= 400 && status < 600 && error instanceof Error) {
    return textResponse(error.message + "\n", status);
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  log.error(`${context}: internal error: ${detail}`);
  return textResponse("internal error; see the mdserver log\n", 500);
}
