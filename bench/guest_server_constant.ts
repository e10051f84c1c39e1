#!/usr/bin/env -S deno run -P=bench
/**
 * The ceiling's twin on the guest HTTP server (src/http_server/): the same
 * constant answer as bench/ceiling_server.ts, served by `serveGuests` with
 * its default limits, so that the two servers' CPU per request compare.
 *
 *   deno run -P=bench bench/guest_server_constant.ts [PORT]
 *
 * Prints `listening on http://127.0.0.1:PORT/` once ready; SIGTERM shuts it
 * down (deadline 2 s) and exits.
 *
 * @module
 */

import { serveGuests } from "../src/http_server/mod.ts";

const BODY = "i-0123456789abcdef0";

function main(): void {
  const port = Number(Deno.args[0] ?? "0");
  const server = serveGuests(
    { hostname: "127.0.0.1", port },
    () => new Response(BODY, { headers: { "content-type": "text/plain; charset=utf-8" } }),
  );
  console.log(`listening on http://127.0.0.1:${server.addr.port}/`);
  Deno.addSignalListener("SIGTERM", async () => {
    await server.shutdown({ deadlineMs: 2_000 });
    Deno.exit(0);
  });
}

if (import.meta.main) main();
