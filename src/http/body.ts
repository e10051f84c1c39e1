/**
 * Reading a request body: at most a limit of bytes, as UTF-8 text.
 *
 * @module
 */

import { readText, TextTooLargeError } from "../io/read_text.ts";

/** Largest request body read, in bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Reads a request body as UTF-8 text; throws TextTooLargeError past `limit`
 * (a declared Content-Length over it is refused unread), NotUtf8Error or
 * StreamReadError (a client that breaks off or garbles its body).
 */
export async function readBody(request: Request, limit: number = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) throw new TextTooLargeError("request body", limit);
  if (!request.body) return "";
  return await readText(request.body, { limit, what: "request body" });
}
