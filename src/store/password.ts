/**
 * A guest's password: generated or given, kept as a SHA-512 crypt hash
 * (`$6$…`, what cloud-init's `chpasswd` and `users: hashed_passwd` take and
 * what /etc/shadow holds) for good, and in clear only until it has been
 * delivered once (in the config drive a start of the domain opens, or
 * fetched by the guest), see docs/configdrive.md.
 *
 * The hash is the crypt(3) scheme of glibc ("Unix crypt using SHA-256 and
 * SHA-512", 5000 rounds by default), written from its specification with
 * node:crypto's SHA-512.
 *
 * @module
 */

import { createHash, getRandomValues } from "node:crypto";
import type { Instance, InstancePassword } from "./instance.ts";

export type { InstancePassword };

/** Letters and digits without the look-alikes 0/O, 1/l/I, so a password can be read out and typed. */
const PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/** crypt(3)'s base-64 digits, in its order. */
const CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Length of a generated password: 20 of 57 symbols, about 116 bits. */
export const GENERATED_PASSWORD_LENGTH = 20;
/** Longest password accepted: crypt's cost grows with it. */
export const MAX_PASSWORD_LENGTH = 256;

/** `count` symbols of `alphabet` drawn uniformly from the system's random source. */
function randomText(alphabet: string, count: number): string {
  let text = "";
  // Rejection sampling keeps every symbol equally likely.
  const limit = 256 - (256 % alphabet.length);
  while (text.length < count) {
    for (const byte of getRandomValues(new Uint8Array(count * 2))) {
      if (byte < limit && text.length < count) text += alphabet[byte % alphabet.length];
    }
  }
  return text;
}

/** A new random password. */
export function generatePassword(length = GENERATED_PASSWORD_LENGTH): string {
  return randomText(PASSWORD_ALPHABET, length);
}

/** Why text cannot be a password (empty, too long, a control character or line break), or null. */
export function passwordProblem(text: string): string | null {
  if (text.length === 0) return "the password is empty";
  if (text.length > MAX_PASSWORD_LENGTH) return `the password is over ${MAX_PASSWORD_LENGTH} characters`;
  // It reaches files of one line (vm_password.txt) and chpasswd's "user:password" lines.
  if (/[\p{Cc}\p{Zl}\p{Zp}]/u.test(text)) return "the password holds a control character or line break";
  return null;
}

function sha512(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("sha512");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

/** `source` repeated to `length` bytes. */
function stretch(source: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = source[i % source.length]!;
  return out;
}

/** The byte order in which crypt(3) writes a SHA-512 digest, three bytes to four digits. */
const DIGEST_ORDER: [number, number, number][] = [];
for (let i = 0; i < 21; i++) DIGEST_ORDER.push([(i * 22) % 63, (i * 22 + 21) % 63, (i * 22 + 42) % 63]);

function encodeDigest(digest: Uint8Array): string {
  let text = "";
  const put = (value: number, digits: number) => {
    for (let i = 0; i < digits; i++, value >>>= 6) text += CRYPT_ALPHABET[value & 0x3f];
  };
  for (const [a, b, c] of DIGEST_ORDER) put((digest[a]! << 16) | (digest[b]! << 8) | digest[c]!, 4);
  put(digest[63]!, 2);
  return text;
}

/**
 * The SHA-512 crypt hash of password: `$6$<salt>$<digest>` (5000 rounds).
 * A salt of up to 16 crypt digits is drawn when none is given.
 */
export function sha512Crypt(password: string, salt: string = randomText(CRYPT_ALPHABET, 16)): string {
  const key = new TextEncoder().encode(password);
  const saltBytes = new TextEncoder().encode(salt.slice(0, 16));
  const alternate = sha512(key, saltBytes, key);
  const first = createHash("sha512").update(key).update(saltBytes).update(stretch(alternate, key.length));
  for (let length = key.length; length > 0; length >>= 1) first.update(length & 1 ? alternate : key);
  let digest = new Uint8Array(first.digest());
  const keyBlock = stretch(sha512(...Array(key.length).fill(key)), key.length);
  const saltBlock = stretch(sha512(...Array(16 + digest[0]!).fill(saltBytes)), saltBytes.length);
  for (let round = 0; round < 5000; round++) {
    const hash = createHash("sha512");
    hash.update(round & 1 ? keyBlock : digest);
    if (round % 3 !== 0) hash.update(saltBlock);
    if (round % 7 !== 0) hash.update(keyBlock);
    hash.update(round & 1 ? digest : keyBlock);
    digest = new Uint8Array(hash.digest());
  }
  return `$6$${salt.slice(0, 16)}$${encodeDigest(digest)}`;
}

/** A password record for clear text set now. */
export function newInstancePassword(clear: string, now: Date): InstancePassword {
  return { hash: sha512Crypt(clear), clear, setAt: now.toISOString() };
}

/** The record with `password` set, or with null without it and without the one the guest posted. */
export function withPassword(instance: Instance, password: InstancePassword | null): Instance {
  if (password !== null) return { ...instance, password };
  const { password: _, postedPassword: __, ...rest } = instance;
  return rest;
}

/**
 * The record with its password's clear text forgotten, and that text; null
 * when there is none to take (or, with `hash`, when the password is
 * another's: one set meanwhile is not the one delivered).
 */
export function withoutClearPassword(instance: Instance, hash?: string): { instance: Instance; clear: string } | null {
  const clear = instance.password?.clear ?? null;
  if (clear === null) return null;
  if (hash !== undefined && instance.password?.hash !== hash) return null;
  return { instance: { ...instance, password: { ...instance.password!, clear: null } }, clear };
}
