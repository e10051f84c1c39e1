import assert, { deepStrictEqual as assertEquals } from "node:assert/strict";
import { serveGuests } from "./mod.ts";
import { exchange, statusOf } from "./_raw_client_test_helper.ts";

/** Requests a strict server refuses, with the status it answers. */
const CORPUS: [string, string, number][] = [
  ["bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", 400],
  ["bare CR in a header", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400],
  ["two spaces in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["trailing space after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400],
  ["HTTP/0.9 request line", "GET /\r\n\r\n", 400],
  ["lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400],
  ["version with letters", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400],
  ["no method", " / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["method with a bad character", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["target without a slash", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["https absolute-form target", "GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  folded\r\n\r\n", 400],
  ["space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
  ["header name with a bad character", "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400],
  ["header without a colon", "GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n", 400],
  ["NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400],
  ["DEL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400],
  ["no Host in HTTP/1.1", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400],
  ["two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
  [
    "duplicate Content-Length",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    400,
  ],
  ["Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400],
  ["negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400],
  ["signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400],
  ["hex Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400],
  ["empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400],
  [
    "Content-Length and Transfer-Encoding",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    400,
  ],
  [
    "Transfer-Encoding and Content-Length",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    400,
  ],
  [
    "Transfer-Encoding twice",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    400,
  ],
  ["Transfer-Encoding list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400],
  ["Transfer-Encoding look-alike", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400],
  ["Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
  ["chunk size not hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400],
  ["negative chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400],
  ["0x chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400],
  [
    "chunk size with junk",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n",
    400,
  ],
  ["chunk size too long", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100000000\r\n", 400],
  [
    "chunk without its CRLF",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    400,
  ],
  [
    "chunk size with a bare LF",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    400,
  ],
  ["bad trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", 400],
  ["a TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400],
  ["the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505],
  ["HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
  ["CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405],
  ["TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405],
];

Deno.test("malformed and smuggling requests are answered 400 (505, 405 where unsupported) and closed", async () => {
  let handled = 0;
  const server = serveGuests({ hostname: "127.0.0.1", port: 0 }, async (request) => {
    handled++;
    return new Response(`handled ${await request.text()}`);
  });
  try {
    const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
    for (const [name, request, status] of CORPUS) {
      const seen = await exchange(server.addr.port, latin1(request), 2000);
      assertEquals(statusOf(seen.text), status, `${name}: ${JSON.stringify(seen.text.slice(0, 80))}`);
      assert(seen.closed, `${name}: the connection stays open`);
      assert(seen.text.includes("\r\nconnection: close\r\n"), name);
    }
    assertEquals(handled, 0);
    const stats = server.stats();
    assertEquals(stats.refused.version, 2);
    assertEquals(stats.refused.method, 2);
    assertEquals(stats.refused.malformed, CORPUS.length - 4);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("header values beyond ASCII reach the handler as Latin-1 byte strings", async () => {
  const server = serveGuests(
    { hostname: "127.0.0.1", port: 0 },
    (request) => new Response(String(request.headers.get("x-name")?.charCodeAt(1))),
  );
  try {
    const seen = await exchange(
      server.addr.port,
      Uint8Array.from(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Name: a\xe9b\r\nConnection: close\r\n\r\n",
        (c) => c.charCodeAt(0),
      ),
    );
    assertEquals(statusOf(seen.text), 200);
    assert(seen.text.endsWith("233"), seen.text);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});
