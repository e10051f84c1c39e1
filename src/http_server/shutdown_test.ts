import assert, { deepStrictEqual as assertEquals } from "node:assert/strict";
import { serveGuests } from "./mod.ts";
import { readResponses, readUntilClosed, send } from "./_raw_client_test_helper.ts";

Deno.test("shutdown() honours its deadline with a stuck body and a handler that never answers", async () => {
  const never = Promise.withResolvers<Response>();
  const server = serveGuests({ hostname: "127.0.0.1", port: 0, limits: { bodyTimeoutMs: 60_000 } }, (request) => {
    if (request.url.endsWith("/hang")) return never.promise;
    return new Response("ok");
  });
  const port = server.addr.port;
  const stuck = await Deno.connect({ hostname: "127.0.0.1", port });
  await send(stuck, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nonly ten b");
  const hanging = await Deno.connect({ hostname: "127.0.0.1", port });
  await send(hanging, "GET /hang HTTP/1.1\r\nHost: a\r\n\r\n");
  const idle = await Deno.connect({ hostname: "127.0.0.1", port });
  await send(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  assertEquals((await readResponses(idle, 1)).length, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));

  const started = performance.now();
  const closing = server.shutdown({ deadlineMs: 500 });
  const [idleSeen, stuckSeen, hangingSeen] = await Promise.all([
    readUntilClosed(idle, 3000),
    readUntilClosed(stuck, 3000),
    readUntilClosed(hanging, 3000),
  ]);
  const result = await closing;
  const elapsed = performance.now() - started;
  // The idle connection is closed at once, the busy ones at the deadline, not when their own timeouts end (60 s).
  assert(stuckSeen.closed && hangingSeen.closed);
  assert(
    idleSeen.closed && idleSeen.ms + 250 < Math.min(stuckSeen.ms, hangingSeen.ms),
    `idle connection closed after ${idleSeen.ms} ms, the busy ones after ${stuckSeen.ms} and ${hangingSeen.ms} ms`,
  );
  assert(elapsed >= 450 && elapsed < 2500, `shutdown took ${elapsed} ms`);
  assertEquals(result.closedAtDeadline, 2);
  // New connections are refused once shutdown has begun.
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
  never.resolve(new Response("late"));
  await server.finished;
});

Deno.test("shutdown() lets a request in flight finish and closes its connection after the answer", async () => {
  const server = serveGuests({ hostname: "127.0.0.1", port: 0 }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    return new Response("finished");
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await send(conn, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  await new Promise((resolve) => setTimeout(resolve, 50));
  const closing = server.shutdown({ deadlineMs: 2000 });
  const seen = await readUntilClosed(conn, 3000);
  const result = await closing;
  assert(seen.text.includes("connection: close") && seen.text.endsWith("finished"), seen.text);
  assertEquals(result.closedAtDeadline, 0);
  assert(result.elapsedMs < 1000);
});
