/**
 * A directory of parts as one MIME multipart/mixed document, the way
 * cloud-init's make-mime writes it: parts in name order, each with a
 * content type cloud-init has a handler for.
 *
 * @module
 */

import { join } from "node:path";
import { insideRoot } from "./_lookup.ts";
import { TemplateError } from "./errors.ts";
import { typeFromStart } from "./start_type.ts";

/** One rendered part of a multipart document. */
export interface Part {
  /** The file name, for Content-Disposition. */
  name: string;
  /** The content type cloud-init dispatches the part by. */
  type: string;
  /** The part's text. */
  body: string;
}

/** Regular files in dir, sorted by name; hidden files, backups (`~`) and escapes skipped. */
export async function listParts(dir: string, root: string): Promise<{ name: string; path: string }[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".") || entry.name.endsWith("~")) continue;
    names.push(entry.name);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: { name: string; path: string }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (insideRoot(path, root) === null) continue;
    if (Deno.statSync(path).isFile) parts.push({ name, path });
  }
  return parts;
}

/**
 * A rendered part file as cloud-init will handle it: typed by its start
 * (`#cloud-config`, `#!`, `#include`…, as cloud-init itself types it), else
 * by its extension — `.yaml`/`.yml` is cloud-config, `.sh` a shell script,
 * given `#!/bin/sh` when it has no `#!` line of its own (without one it
 * would fail to run). Anything else would reach current cloud-init as an
 * unhandled `text/plain` (a warning, and a degraded boot), so it is a
 * TemplateError naming the file.
 */
export function partOf(file: { name: string; path: string }, body: string): Part {
  const type = typeFromStart(body);
  if (type !== null) return { name: file.name, type, body };
  if (/\.ya?ml$/i.test(file.name)) return { name: file.name, type: "text/cloud-config", body };
  if (/\.sh$/i.test(file.name)) return { name: file.name, type: "text/x-shellscript", body: `#!/bin/sh\n${body}` };
  throw new TemplateError(
    `Cannot render part "${file.path}": cloud-init has no handler for it; start it with #cloud-config, #!, ` +
      `#include, #cloud-boothook or ## template: jinja, or name it .yaml or .sh`,
    { file: file.path, line: null },
  );
}

/**
 * Whether a part is a cloud-config with nothing in it but its header,
 * blank lines and comments (a part whose template's `% if` left it empty).
 * cloud-init 23.x and later log "Failed at merging in cloud config part
 * from NAME: empty cloud config" for it, a recoverable error that ends the
 * boot "degraded done"; such a part is left out of the multipart.
 */
export function isEmptyCloudConfig(part: Part): boolean {
  if (part.type !== "text/cloud-config") return false;
  // The `#cloud-config` header is a comment too.
  return part.body.split(/\r?\n/).every((line) => /^\s*(#.*)?$/.test(line));
}

/** Base64 of a string's UTF-8, in 76-column lines. */
function _base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/.{76}/g, "$&\n").replace(/\n$/, "");
}

/** The Content-Disposition header for a part file name. */
function _disposition(name: string): string {
  if (/^[\x20-\x7e]*$/.test(name)) {
    return `attachment; filename="${name.replace(/["\\]/g, "\\$&")}"`;
  }
  return `attachment; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * Assembles parts into a MIME multipart/mixed document, as cloud-init's
 * make-mime does. The boundary is derived from the parts, so the same parts
 * make the same bytes (a seed image equals what the API serves).
 */
export function assembleMultipart(parts: Part[]): { body: string; boundary: string } {
  const encoded = parts.map((part) => {
    // 7bit only for short-lined ASCII; anything else goes as base64, which
    // Python's email package (cloud-init) decodes without charset guessing.
    const plain = !/[\u0080-\uffff]/.test(part.body) &&
      !/[^\n]{999}/.test(part.body);
    const headers = [
      `Content-Type: ${part.type}; charset="utf-8"`,
      "MIME-Version: 1.0",
      `Content-Transfer-Encoding: ${plain ? "7bit" : "base64"}`,
      `Content-Disposition: ${_disposition(part.name)}`,
    ].join("\n");
    return `${headers}\n\n${plain ? part.body : _base64(part.body)}`;
  });
  let boundary: string;
  let salt = 0;
  do {
    boundary = `mdserver-${digest(`${salt++}\n${encoded.join("\n")}`)}`;
  } while (encoded.some((part) => part.includes(boundary)));
  const body = [
    "MIME-Version: 1.0",
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    "",
    ...encoded.map((part) => `--${boundary}\n${part}`),
    `--${boundary}--`,
    "",
  ].join("\n");
  return { body, boundary };
}

/** Two 32-bit FNV-1a digests of text's UTF-16 units (different seeds), as 16 hex digits: stable, not secret. */
function digest(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    a = Math.imul(a ^ unit, 0x01000193);
    b = Math.imul(b ^ unit, 0x01000193);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}
