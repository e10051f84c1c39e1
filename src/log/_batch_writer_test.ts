import assert from "node:assert/strict";
import { BATCH_MAX_LINES, batchWriter } from "./_batch_writer.ts";

/** A sink that records each system-level write, taking at most `chunk` bytes at a time. */
function sink(chunk = Infinity) {
  const writes: string[] = [];
  const decoder = new TextDecoder();
  const write = (bytes: Uint8Array) => {
    const taken = bytes.subarray(0, Math.min(bytes.length, chunk));
    writes.push(decoder.decode(taken));
    return taken.length;
  };
  return { writes, write };
}

/** One turn of the event loop: the batch timer (0 ms) has fired. */
const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 5));

Deno.test("batchWriter() writes a line after a quiet spell at once", () => {
  const out = sink();
  let clock = 0;
  const writer = batchWriter(out.write, () => clock);
  writer.write("first", false);
  assert.deepEqual(out.writes, ["first\n"]);
  clock = 10;
  writer.write("after a pause", false);
  assert.deepEqual(out.writes, ["first\n", "after a pause\n"]);
});

Deno.test("batchWriter() gathers lines in quick succession into one write on the next turn", async () => {
  const out = sink();
  const writer = batchWriter(out.write, () => 0);
  writer.write("a", false);
  writer.write("b", false);
  writer.write("c", false);
  assert.deepEqual(out.writes, ["a\n"], "b and c are held");
  await nextTurn();
  assert.deepEqual(out.writes, ["a\n", "b\nc\n"]);
});

Deno.test("batchWriter() writes an urgent line, and the lines held before it, at once", () => {
  const out = sink();
  const writer = batchWriter(out.write, () => 0);
  writer.write("a", false);
  writer.write("b", false);
  writer.write("warning", true);
  assert.deepEqual(out.writes, ["a\n", "b\nwarning\n"]);
});

Deno.test("batchWriter() holds at most BATCH_MAX_LINES lines, and finishes short writes", async () => {
  const out = sink(100);
  const writer = batchWriter(out.write, () => 0);
  writer.write("start", false);
  for (let i = 0; i < BATCH_MAX_LINES; i++) writer.write(`line ${i}`, false);
  const expected = Array.from({ length: BATCH_MAX_LINES }, (_, i) => `line ${i}\n`).join("");
  // Written without waiting for the timer, in as many pieces as the sink takes.
  assert.equal(out.writes.slice(1).join(""), expected);
  assert.ok(out.writes.length > 2);
  const count = out.writes.length;
  await nextTurn();
  assert.equal(out.writes.length, count, "nothing was left to write");
  writer.flush();
  assert.equal(out.writes.length, count);
});
