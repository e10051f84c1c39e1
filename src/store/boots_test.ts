import assert from "node:assert/strict";
import { silentLogger } from "../log/log.ts";
import { BootJournal, DenoKvBackend, parseReportingEvent, type ReportingEvent } from "./mod.ts";

function finish(name: string): ReportingEvent {
  const event = parseReportingEvent(
    JSON.stringify({ event_type: "finish", name, description: name, result: "SUCCESS" }),
  );
  assert.ok(typeof event !== "string");
  return event;
}

async function withJournal(history: number, body: (journal: BootJournal, kv: Deno.Kv) => Promise<void>) {
  const kv = await Deno.openKv(":memory:");
  try {
    await kv.set(["instances", "u1"], { uuid: "u1" });
    await body(new BootJournal(new DenoKvBackend(kv), { log: silentLogger, history, maxEventsPerBoot: 100 }), kv);
  } finally {
    kv.close();
  }
}

Deno.test("BootJournal keeps the last `history` boots, newest first, and tells its listeners", async () => {
  await withJournal(2, async (journal) => {
    const seen: string[] = [];
    journal.subscribe((_uuid, boot, before) => seen.push(`${boot.seq}:${boot.phase}:${before === null}`));
    for (let i = 0; i < 3; i++) await journal.start("u1");
    journal.noteFetch("u1", "metadata");
    journal.noteFetch("u1", "metadata");
    await journal.flush();
    assert.equal(await journal.event("u1", finish("modules-final")), "taken");
    assert.equal(await journal.event("u1", finish("modules-final")), "stale");
    const boots = await journal.get("u1");
    assert.deepEqual(boots.map((boot) => [boot.seq, boot.phase]), [[3, "done"], [2, "registered"]]);
    assert.deepEqual(seen, [
      "1:registered:true",
      "2:registered:true",
      "3:registered:true",
      "3:metadata fetched:false",
      "3:done:false",
    ]);
    assert.equal(journal.version, 5);
  });
});

Deno.test("BootJournal writes nothing for an instance that no longer exists", async () => {
  await withJournal(5, async (journal, kv) => {
    assert.equal(await journal.start("gone"), null);
    assert.deepEqual(await journal.get("gone"), []);
    await journal.start("u1");
    // The store's removal deletes the record and the boots together; a fetch noted after it writes nothing.
    await kv.atomic().delete(["instances", "u1"]).delete(["boots", "u1"]).commit();
    journal.forget("u1");
    journal.noteFetch("u1", "metadata");
    await journal.flush();
    assert.equal((await kv.get(["boots", "u1"])).value, null);
  });
});

Deno.test("BootJournal.changed() wakes on a change, on its timeout and on close()", async () => {
  await withJournal(5, async (journal) => {
    const waited = journal.changed(journal.version, 5_000);
    await journal.start("u1");
    await waited;
    const started = performance.now();
    await journal.changed(journal.version, 50);
    assert.ok(performance.now() - started >= 40);
    const closing = journal.changed(journal.version, 5_000);
    journal.close();
    await closing;
  });
});
