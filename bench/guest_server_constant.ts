#!/usr/bin/env -S deno run -P=bench
/**
 * The ceiling's twin on the guest HTTP server (src/http_server/): the same
 * constant answer as bench/ceiling_server.ts, served by `serveGuests` with
 * its default limits, so that the two servers' CPU per request compare.
 *
 *   deno run -P=bench bench/guest_server_constant.ts [PORT] [--limits JSON] [--ahead]
 *
 * `--limits '{"maxConnectionsPerSource":10000}'` changes limits (bench/guest_flood.ts).
 * `GET /_stats` answers the server's counters as JSON. Prints
 * `listening on http://127.0.0.1:PORT/` once ready; SIGTERM shuts it down
 * (deadline 2 s) and exits.
 *
 * @module
 */

import { type GuestServer, PreparedAnswer, serveGuests, type ServerLimits } from "../src/http_server/mod.ts";

const BODY = "i-0123456789abcdef0";

function main(): void {
  const port = /^\d+$/.test(Deno.args[0] ?? "") ? Number(Deno.args[0]) : 0;
  const limitsAt = Deno.args.indexOf("--limits");
  const limits = limitsAt >= 0 ? JSON.parse(Deno.args[limitsAt + 1] ?? "{}") as Partial<ServerLimits> : {};
  // --ahead: the constant answered ahead (PreparedAnswer), as mdserver answers what it prepared.
  const prepared = new PreparedAnswer(200, { "content-type": "text/plain; charset=utf-8" }, BODY);
  const answerAhead = Deno.args.includes("--ahead") ? () => prepared : undefined;
  let server: GuestServer | null = null;
  server = serveGuests({ hostname: "127.0.0.1", port, limits, ...(answerAhead ? { answerAhead } : {}) }, (request) => {
    if (request.url.endsWith("/_stats")) return Response.json(server!.stats());
    return new Response(BODY, { headers: { "content-type": "text/plain; charset=utf-8" } });
  });
  console.log(`listening on http://127.0.0.1:${server.addr.port}/`);
  Deno.addSignalListener("SIGTERM", async () => {
    await server!.shutdown({ deadlineMs: 2_000 });
    Deno.exit(0);
  });
}

if (import.meta.main) main();
