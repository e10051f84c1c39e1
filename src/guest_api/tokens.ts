/**
 * IMDSv2 session tokens, as the EC2 metadata service hands them out on
 * `PUT /latest/api/token`.
 *
 * Tokens are verifiable without storage: a token is its expiry time (ms on
 * the process's monotonic clock), a
 * random nonce and an HMAC-SHA256 over (instance UUID, source address,
 * expiry, nonce) under a key that exists only in this process. So a token
 * works only for the guest that asked for it (same instance, same address),
 * only until its TTL, and never after a restart (cloud-init answers a 401 by
 * asking for a new token, so that costs one request).
 *
 * @module
 */

import { InvalidTokenTtlError } from "./errors.ts";

/** The request header carrying the TTL on the PUT, and echoed on its answer. */
export const TOKEN_TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";
/** The request header carrying the token on a GET. */
export const TOKEN_HEADER = "x-aws-ec2-metadata-token";
/** The longest TTL AWS accepts: six hours. */
export const MAX_TOKEN_TTL_SECONDS = 21600;

/** What signs and checks tokens: a process-local key and a monotonic clock in milliseconds. */
export interface TokenSigner {
  /** The HMAC key tokens are signed with. */
  key: CryptoKey;
  /** The clock, in ms from any origin; monotonic, so setting the wall clock neither shortens nor extends a token. */
  now: () => number;
}

/** Who a token is bound to. */
export interface TokenSubject {
  /** The instance's domain UUID. */
  uuid: string;
  /** The source address the guest asked from. */
  address: string;
}

/** The outcome of checking a token. */
export type TokenCheck = "valid" | "expired" | "invalid";

const VERSION = "v1";
const encoder = new TextEncoder();

/**
 * Creates a signer with a fresh random key (or the one given) and the
 * process's monotonic clock, performance.now() (or the one given). Tokens
 * die with the process, so a clock that starts with it is enough.
 */
export async function createTokenSigner(
  options: { key?: CryptoKey; now?: () => number } = {},
): Promise<TokenSigner> {
  const key = options.key ?? await crypto.subtle.generateKey(
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign", "verify"],
  );
  return { key, now: options.now ?? (() => performance.now()) };
}

/**
 * The TTL in seconds from the PUT's header text; an InvalidTokenTtlError naming the
 * problem when it is missing, not a whole number, or outside 1–21600.
 */
export function parseTokenTtl(header: string | null): number {
  if (header === null) {
    throw new InvalidTokenTtlError(`missing ${TOKEN_TTL_HEADER} header`);
  }
  const text = header.trim();
  const value = /^\d{1,6}$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= MAX_TOKEN_TTL_SECONDS)) {
    throw new InvalidTokenTtlError(
      `${TOKEN_TTL_HEADER} must be a whole number from 1 to ${MAX_TOKEN_TTL_SECONDS}, got "${header}"`,
    );
  }
  return value;
}

/**
 * Issues a token for subject that expires ttlSeconds from now, to the
 * millisecond (rounded up, never down: a TTL of 1 is valid for the whole
 * second after issue).
 */
export async function issueToken(
  signer: TokenSigner,
  subject: TokenSubject,
  ttlSeconds: number,
): Promise<string> {
  const expiry = Math.ceil(signer.now()) + ttlSeconds * 1000;
  const nonce = base64url(crypto.getRandomValues(new Uint8Array(12)));
  const mac = await crypto.subtle.sign(
    "HMAC",
    signer.key,
    signedBytes(subject, expiry, nonce),
  );
  return `${VERSION}.${expiry}.${nonce}.${base64url(new Uint8Array(mac))}`;
}

/**
 * Checks a token presented by subject: "valid", "expired" (a genuine token
 * of this subject past its TTL) or "invalid" (malformed, forged, from a
 * previous run, or issued to another guest).
 */
export async function checkToken(
  signer: TokenSigner,
  token: string,
  subject: TokenSubject,
): Promise<TokenCheck> {
  if (token.length > 256) return "invalid";
  const match = /^v1\.(\d{1,15})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/
    .exec(token.trim());
  if (!match) return "invalid";
  const expiry = Number(match[1]);
  const nonce = match[2]!;
  const mac = fromBase64url(match[3]!);
  if (mac === null) return "invalid";
  const genuine = await crypto.subtle.verify(
    "HMAC",
    signer.key,
    mac,
    signedBytes(subject, expiry, nonce),
  );
  if (!genuine) return "invalid";
  return signer.now() >= expiry ? "expired" : "valid";
}

function signedBytes(
  subject: TokenSubject,
  expiry: number,
  nonce: string,
): Uint8Array<ArrayBuffer> {
  return encoder.encode(
    `${VERSION}|${subject.uuid}|${subject.address}|${expiry}|${nonce}`,
  );
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}
