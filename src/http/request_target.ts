/**
 * The URL of a request taken from its request line alone. Deno builds
 * `request.url` from the Host header and the request target, so a Host of
 * `x/latest/user-data?` moves the path, and `[` or `a b` make the URL
 * unparseable. Routing uses what this gives: the target, with the Host
 * header's text cut off again, on a fixed origin.
 *
 * @module
 */

import { HttpError } from "./errors.ts";

/** The origin every request URL is put on: never a name a client chose. */
const FIXED_ORIGIN = "http://request-line.invalid";

/**
 * The request's URL from its request line: origin-form targets (`/path?q`)
 * as sent; an absolute-form target (`GET http://h/p`) by its path. Null when
 * the target is not a path (the client's error: answer 400).
 */
export function requestLineUrl(request: Request): URL | null {
  // The guest server hands its request target over as parsed: nothing to cut, one URL to make.
  const given = (request as { requestTarget?: unknown }).requestTarget;
  if (typeof given === "string") return given.startsWith("/") ? onFixedOrigin(given) : null;
  const host = request.headers.get("host");
  const prefix = `http://${host}`;
  let target: string;
  // The guest server builds the URL on its bound address (Host plays no part there): cut only a Host that Deno put.
  const cut = host !== null && host !== "" && request.url.startsWith(prefix) ? request.url.slice(prefix.length) : null;
  if (cut !== null && cut.startsWith("/")) {
    target = cut;
  } else {
    // No Host header (Deno put its own address), or an absolute-form target.
    try {
      const url = new URL(request.url);
      target = url.pathname + url.search;
    } catch {
      return null;
    }
  }
  if (!target.startsWith("/")) return null;
  return onFixedOrigin(target);
}

/** The URL of an origin-form target on the fixed origin, or null when it does not parse. */
function onFixedOrigin(target: string): URL | null {
  try {
    return new URL(FIXED_ORIGIN + target);
  } catch {
    return null;
  }
}

/** What a request whose target is not a path answers: CONNECT (authority-form) is a method served nowhere. */
export function badTargetError(request: Request): HttpError {
  if (request.method === "CONNECT") {
    return new HttpError(405, "method CONNECT not allowed here", { allow: "GET, HEAD" });
  }
  return new HttpError(400, "the request target is not a path");
}
