/**
 * What the user-data tests share: template data as the request handler
 * builds it, a throwaway userdata_dir, rendering a text, and reading a
 * multipart document back into its parts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type RenderedTemplate,
  TemplateError,
  TemplateRenderer,
  type TemplateSource,
  type UserDataTarget,
} from "./mod.ts";

/** Makes a symlink with ln(1): Deno.symlink needs unscoped read and write permission. */
export async function symlink(target: string, path: string): Promise<void> {
  const { code } = await new Deno.Command("ln", { args: ["-s", target, path] }).output();
  if (code !== 0) throw new Error(`ln -s ${target} ${path} failed`);
}

export const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3 ops@admin";
export const KEY2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 backup@vault";

/** Template data as the request handler builds it for md_server templates. */
export function data(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: "web01",
    fqdn: "web01.example.com",
    public_keys: { default: KEY, backup: KEY2 },
    public_key_default: KEY,
    public_key_backup: KEY2,
    instance_id: "i-0b2c4e6a8d1f4a3b9",
    ipv4: "10.122.0.15",
    mac: "52:54:00:12:34:56",
    foo: "bar",
    ...extra,
  };
}

export const WEB01: UserDataTarget = {
  prefix: null,
  name: "web01",
  mac: "52:54:00:12:34:56",
};

/** Writes each name → text into dir. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
}

/** Runs fn with a fresh userdata_dir, removed afterwards. */
export async function withDir(
  fn: (dir: string, source: TemplateSource) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver_userdata_" });
  try {
    await fn(dir, {
      userdataDir: dir,
      suffixes: ["", ".yaml"],
      defaultTemplate: null,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Renders template text saved as `<dir>/web01.yaml`. */
export async function renderText(
  text: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  let body = "";
  await withDir(async (dir, source) => {
    await Deno.writeTextFile(join(dir, "web01.yaml"), text);
    body = (await new TemplateRenderer(source).renderUserData(WEB01, data(extra)))
      .body;
  });
  return body;
}

/** The TemplateError that rendering text throws. */
export async function renderError(
  text: string,
  extra: Record<string, unknown> = {},
): Promise<TemplateError> {
  const error = await renderText(text, extra).then(
    () => assert.fail("expected a TemplateError"),
    (error: unknown) => error,
  );
  assert.ok(
    error instanceof TemplateError,
    `expected TemplateError, got ${error}`,
  );
  return error;
}

/** Splits a multipart body back into parts: headers (lower-cased names) and decoded content. */
export function parseMultipart(
  result: RenderedTemplate,
): { headers: Map<string, string>; content: string }[] {
  const boundary = /^multipart\/mixed; boundary=(\S+)$/.exec(result.contentType)
    ?.[1];
  assert.ok(boundary, result.contentType);
  const [head = "", ...rest] = result.body.split(`\n--${boundary}`);
  assert.equal(
    head,
    `MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${boundary}"\n`,
  );
  assert.equal(rest.at(-1), "--\n");
  return rest.slice(0, -1).map((raw) => {
    assert.ok(raw.startsWith("\n"));
    const split = raw.indexOf("\n\n");
    const headers = new Map(
      raw.slice(1, split).split("\n").map((line) => {
        const colon = line.indexOf(": ");
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 2)] as [
          string,
          string,
        ];
      }),
    );
    let content = raw.slice(split + 2);
    if (headers.get("content-transfer-encoding") === "base64") {
      const binary = atob(content.replaceAll("\n", ""));
      content = new TextDecoder().decode(
        Uint8Array.from(binary, (c) => c.charCodeAt(0)),
      );
    }
    return { headers, content };
  });
}
