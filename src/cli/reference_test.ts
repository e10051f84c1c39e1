import assert from "node:assert/strict";
import { cliReference } from "./reference.ts";

Deno.test("docs/cli.md is the help text of every command (regenerate: deno run -q src/cli/reference.ts > docs/cli.md)", async () => {
  const file = new URL("../../docs/cli.md", import.meta.url);
  assert.equal(await Deno.readTextFile(file), cliReference());
});
