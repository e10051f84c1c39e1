#!/usr/bin/env -S deno run -P=bench
/**
 * The ceiling of the boot storm: the least an HTTP server in Deno can do per
 * request, a `Deno.serve` answering a constant. Run as its own process, like
 * mdserver, so that its CPU time can be read from /proc.
 *
 *   deno run -P=bench bench/ceiling_server.ts [PORT]
 *
 * Prints `listening on http://127.0.0.1:PORT/` once ready.
 *
 * @module
 */

const BODY = "i-0123456789abcdef0";

function main(): void {
  const port = Number(Deno.args[0] ?? "0");
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: (addr) => console.log(`listening on http://${addr.hostname}:${addr.port}/`),
  }, () => new Response(BODY, { headers: { "content-type": "text/plain; charset=utf-8" } }));
  Deno.addSignalListener("SIGTERM", () => server.shutdown());
}

if (import.meta.main) main();
