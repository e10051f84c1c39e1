/**
 * The one place where errors become HTTP responses: HttpError (raised by
 * the handlers themselves) answers with its status; each domain error class
 * of the lower parts has its status in ERROR_STATUSES; anything else is a
 * bug or an outage and answers 500, its cause going to the log, never to the
 * client. No error is recognised by its message.
 *
 * @module
 */

import { InvalidDomainError, InvalidDomainXmlError } from "../domain/errors.ts";
import {
  DocumentTemplateError,
  InvalidTokenTtlError,
  MacMismatchError,
  UnknownGuestError,
} from "../guest_api/errors.ts";
import { NotUtf8Error, StreamReadError, TextTooLargeError } from "../io/read_text.ts";
import type { Logger } from "../log/log.ts";
import {
  AddressConflictError,
  AddressOutsidePoolError,
  InstanceIdConflictError,
  NoManagedInterfaceError,
  PoolFullError,
  RecordTooLargeError,
  StoreBusyError,
  StoreFullError,
  StoreUnavailableError,
} from "../store/errors.ts";
import { RecordFilesFullError } from "../dnsmasq/errors.ts";

/** An error with the status and one-line reason to answer, raised by the HTTP handlers. */
export class HttpError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** Extra response headers (`allow` on a 405). */
  readonly headers: Record<string, string>;
  /** The error for a status, its one-line reason and extra headers. */
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.headers = headers;
  }
}

/** A domain error class, its status, and the prefix its message gets in the answer. */
interface ErrorStatus {
  type: abstract new (...args: never[]) => Error;
  status: number;
  prefix?: string;
}

/**
 * Every domain error a handler may meet, and what it answers; the first
 * matching class wins. One row per class, alike on purpose: this table is
 * the one place statuses are chosen.
 */
const ERROR_STATUSES: readonly ErrorStatus[] = [
  { type: InvalidDomainXmlError, status: 400, prefix: "invalid domain XML: " },
  { type: InvalidDomainError, status: 400, prefix: "invalid domain XML: " },
  { type: NoManagedInterfaceError, status: 422 },
  { type: AddressOutsidePoolError, status: 422 },
  { type: AddressConflictError, status: 409 },
  { type: InstanceIdConflictError, status: 409 },
  { type: PoolFullError, status: 507 },
  { type: RecordTooLargeError, status: 413 },
  { type: StoreBusyError, status: 503 },
  { type: StoreFullError, status: 507 },
  { type: StoreUnavailableError, status: 503 },
  { type: RecordFilesFullError, status: 507 },
  { type: TextTooLargeError, status: 413 },
  { type: NotUtf8Error, status: 400 },
  { type: StreamReadError, status: 400 },
  { type: UnknownGuestError, status: 404 },
  { type: MacMismatchError, status: 403 },
  { type: InvalidTokenTtlError, status: 400 },
  { type: DocumentTemplateError, status: 500 },
];

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
 * Turns a thrown value into a response: HttpError and the domain errors of
 * ERROR_STATUSES answer with their message; anything else is a 500 whose
 * cause goes to the log, never to the client.
 */
export function errorToResponse(error: unknown, log: Logger, context: string): Response {
  if (error instanceof HttpError) {
    return textResponse(error.message + "\n", error.status, error.headers);
  }
  const known = ERROR_STATUSES.find((entry) => error instanceof entry.type);
  if (known !== undefined) {
    return textResponse(`${known.prefix ?? ""}${(error as Error).message}\n`, known.status);
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  log.error(`${context}: internal error: ${detail}`);
  return textResponse("internal error; see the mdserver log\n", 500);
}
