import assert from "node:assert/strict";
import { escapeControls, formatTable } from "./ctl.ts";

Deno.test("ctl tables print control characters, line separators and bidi overrides escaped", () => {
  const hostile = "web\x1b]0;owned\x07\x1b[2J\u2028\u202eevil\\x";
  assert.equal(escapeControls(hostile), "web\\x1b]0;owned\\x07\\x1b[2J\\u2028\\u202eevil\\\\x");
  const table = formatTable([["metadata role", hostile], ["host key", "ssh-ed25519 AAAA\r\nfake"]]);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(table, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u202e]/);
  assert.equal(table.split("\n").length, 2);
  assert.match(table, /host key {7}ssh-ed25519 AAAA\\x0d\\x0afake/);
});
