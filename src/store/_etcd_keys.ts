/**
 * Store keys as etcd keys, in an order that matches the store's: parts
 * joined by "/" under a prefix; a number (an address) is "#" and ten
 * zero-padded digits, so numbers sort numerically; a string is kept as it is
 * with "%", "/" and a leading "#" escaped as %XX, so no part can reach into
 * another. For example ["by_ipv4", 167772163] under "/mdserver/" is
 * "/mdserver/by_ipv4/#0167772163".
 *
 * @module
 */

import type { StoreKey } from "./backend.ts";

const NUMBER_DIGITS = 10;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** The etcd key of a store key. */
export function encodeKey(prefix: string, key: StoreKey): string {
  return prefix + key.map(encodePart).join("/");
}

/** The store key of an etcd key under `prefix`. */
export function decodeKey(prefix: string, text: string): StoreKey {
  return text.slice(prefix.length).split("/").map(decodePart);
}

/** The etcd range [key, rangeEnd) holding every key below a store key prefix. */
export function prefixRange(prefix: string, key: StoreKey): { key: string; rangeEnd: string } {
  const base = key.length === 0 ? prefix : encodeKey(prefix, key) + "/";
  return { key: base, rangeEnd: incrementLast(base) };
}

/** The string that sorts right after every string starting with `text` ("/" → "0"). */
function incrementLast(text: string): string {
  const last = text.charCodeAt(text.length - 1);
  return text.slice(0, -1) + String.fromCharCode(last + 1);
}

function encodePart(part: string | number): string {
  if (typeof part === "number") {
    if (!Number.isSafeInteger(part) || part < 0 || part >= 10 ** NUMBER_DIGITS) {
      throw new RangeError(`store key number out of range: ${part}`);
    }
    return "#" + String(part).padStart(NUMBER_DIGITS, "0");
  }
  return part.replace(/[%/]|^#/g, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0"));
}

function decodePart(part: string): string | number {
  if (part.startsWith("#")) return Number(part.slice(1));
  return part.replace(/%([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Base64 of a string's UTF-8 bytes (what the JSON gateway takes for keys and values). */
export function toBase64(text: string): string {
  const bytes = textEncoder.encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** The string whose UTF-8 bytes a base64 text holds. */
export function fromBase64(text: string): string {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return textDecoder.decode(bytes);
}
