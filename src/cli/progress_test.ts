import assert from "node:assert/strict";
import { progressPrinter } from "./progress.ts";

Deno.test("progressPrinter() rewrites one line on a terminal and writes a line per report elsewhere", () => {
  const terminal: string[] = [];
  const onTerminal = progressPrinter((text) => terminal.push(text), true);
  onTerminal("gc: removed 500 of 1000");
  onTerminal("");
  assert.deepEqual(terminal, ["\rgc: removed 500 of 1000\x1b[K", "\r\x1b[K"]);
  const journal: string[] = [];
  const toJournal = progressPrinter((text) => journal.push(text), false);
  toJournal("gc: removed 500 of 1000");
  toJournal("");
  assert.deepEqual(journal, ["gc: removed 500 of 1000\n"]);
});
