import assert, { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { PreparedAnswer, serveGuests } from "./mod.ts";
import { exchange, readResponses, readUntilClosed, send, statusOf } from "./_raw_client_test_helper.ts";

const encoder = new TextEncoder();

/** An echo server: method, path, host, source and body of each request. */
function echoServer(limits = {}) {
  return serveGuests({ hostname: "127.0.0.1", port: 0, limits }, async (request, info) => {
    const url = new URL(request.url);
    const body = await request.text();
    return new Response(`${request.method} ${url.pathname}${url.search} ${info.remoteAddr.hostname} [${body}]`, {
      headers: { "x-host": request.headers.get("host") ?? "" },
    });
  });
}

Deno.test("serveGuests() answers fetch() over a kept-alive connection, with Date and Content-Length", async () => {
  const server = echoServer();
  try {
    const client = Deno.createHttpClient({ localAddress: "127.0.0.2" });
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`http://127.0.0.1:${server.addr.port}/a?i=${i}`, {
        method: "POST",
        body: `hi ${i}`,
        client,
      });
      assertEquals(await response.text(), `POST /a?i=${i} 127.0.0.2 [hi ${i}]`);
      assertMatch(response.headers.get("date") ?? "", /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
      assertEquals(response.headers.get("content-length"), String(`POST /a?i=${i} 127.0.0.2 [hi ${i}]`.length));
    }
    client.close();
    assertEquals(server.stats().requests, 3);
    assertEquals(server.stats().acceptedConnections, 1);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() answers curl, a chunked upload among them", async () => {
  const server = echoServer();
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const output = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--max-time",
        "5",
        `${base}/one`,
        "-H",
        "Transfer-Encoding: chunked",
        "-d",
        "chunky",
        "--next",
        `${base}/two`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(output.stderr), "");
    assertEquals(new TextDecoder().decode(output.stdout), "POST /one 127.0.0.1 [chunky]GET /two 127.0.0.1 []");
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() answers pipelined requests in order on one connection", async () => {
  const server = echoServer();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await send(
      conn,
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nxyz" +
        "POST /3 HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;ext=1\r\nc\r\n0\r\nTrailer: x\r\n\r\n",
    );
    const responses = await readResponses(conn, 3);
    conn.close();
    assertEquals(responses.map((text) => text.slice(text.indexOf("\r\n\r\n") + 4)), [
      "GET /1 127.0.0.1 []",
      "POST /2 127.0.0.1 [xyz]",
      "POST /3 127.0.0.1 [abc]",
    ]);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() routes on the request line whatever the Host says, and reads absolute-form targets", async () => {
  const server = echoServer();
  try {
    for (const host of ["x/latest/user-data?", "[", "%", "a b", ":99999"]) {
      const { text } = await exchange(
        server.addr.port,
        `GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      assertEquals(statusOf(text), 200, host);
      assert(text.endsWith("GET /latest/meta-data/instance-id 127.0.0.1 []"), text);
    }
    const { text } = await exchange(
      server.addr.port,
      "GET http://evil/x?y HTTP/1.1\r\nHost: evil\r\nConnection: close\r\n\r\n",
    );
    assert(text.endsWith("GET /x?y 127.0.0.1 []"), text);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() closes HTTP/1.0 connections unless asked to keep them, and honours Connection: close", async () => {
  const server = echoServer();
  try {
    const plain = await exchange(server.addr.port, "GET /a HTTP/1.0\r\n\r\n");
    assert(plain.closed);
    assertEquals(statusOf(plain.text), 200);
    assertMatch(plain.text, /\r\nconnection: close\r\n/);

    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await send(conn, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const [kept] = await readResponses(conn, 1);
    assertMatch(kept ?? "", /\r\nconnection: keep-alive\r\n/);
    await send(conn, "GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    const last = await readUntilClosed(conn, 2000);
    assert(last.closed);
    assert(last.text.endsWith("GET /c 127.0.0.1 []"));
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() answers HEAD with the length of the body it leaves out", async () => {
  const server = serveGuests({ hostname: "127.0.0.1", port: 0 }, () => new Response("twelve bytes"));
  try {
    const { text } = await exchange(server.addr.port, "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assertMatch(text, /\r\ncontent-length: 12\r\n/);
    assert(text.endsWith("\r\n\r\n"), text);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() streams a ReadableStream body chunked, and bytes bodies whole", async () => {
  const server = serveGuests({ hostname: "127.0.0.1", port: 0 }, (request) => {
    if (new URL(request.url).pathname === "/bytes") return new Response(encoder.encode("raw"));
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (n === 3) controller.close();
        else controller.enqueue(encoder.encode(`part${n++};`));
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  });
  try {
    const streamed = await fetch(`http://127.0.0.1:${server.addr.port}/stream`);
    assertEquals(streamed.headers.get("transfer-encoding"), "chunked");
    assertEquals(await streamed.text(), "part0;part1;part2;");
    const bytes = await fetch(`http://127.0.0.1:${server.addr.port}/bytes`);
    assertEquals(bytes.headers.get("content-length"), "3");
    assertEquals(await bytes.text(), "raw");
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() answers 100 Continue to Expect: 100-continue and 417 to any other Expect", async () => {
  const server = echoServer();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await send(conn, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    const buffer = new Uint8Array(100);
    const count = (await conn.read(buffer)) ?? 0;
    assertEquals(new TextDecoder().decode(buffer.subarray(0, count)), "HTTP/1.1 100 Continue\r\n\r\n");
    await send(conn, "ok");
    const [answer] = await readResponses(conn, 1);
    conn.close();
    assert(answer?.endsWith("POST /up 127.0.0.1 [ok]"), answer);

    const refused = await exchange(
      server.addr.port,
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: x\r\n\r\nok",
    );
    assertEquals(statusOf(refused.text), 417);
    assert(refused.closed);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() answers 500 when the handler throws, and keeps serving", async () => {
  const errors: unknown[] = [];
  const server = serveGuests({ hostname: "127.0.0.1", port: 0, onError: (error) => errors.push(error) }, (request) => {
    if (request.url.endsWith("/boom")) throw new Error("boom");
    return new Response("fine");
  });
  try {
    const boom = await fetch(`http://127.0.0.1:${server.addr.port}/boom`);
    assertEquals(boom.status, 500);
    await boom.body?.cancel();
    assertEquals(await (await fetch(`http://127.0.0.1:${server.addr.port}/ok`)).text(), "fine");
    assertEquals(errors.length, 1);
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() gives the handler an instanceof Request whose members all work", async () => {
  let seen = "";
  const server = serveGuests({ hostname: "127.0.0.1", port: 0 }, async (request) => {
    const copy = request.clone();
    const form = await request.formData();
    seen = [
      request instanceof Request,
      request.method,
      request.headers.get("content-type"),
      form.get("b"),
      request.bodyUsed,
      await copy.text(),
      request.signal.aborted,
    ].join(" ");
    return new Response("ok");
  });
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/f`, {
      method: "POST",
      body: new URLSearchParams({ a: "1", b: "2" }),
    });
    await response.text();
    assertEquals(seen, "true POST application/x-www-form-urlencoded;charset=UTF-8 2 true a=1&b=2 false");
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() writes every header a handler sets, whichever way the Response was made", async () => {
  const responses: Record<string, () => Response> = {
    "/string": () => new Response("x"),
    "/json": () => Response.json({ a: 1 }),
    "/headers": () => {
      const response = new Response("x", { status: 404, headers: [["X-A", "1"], ["set-cookie", "a=1"]] });
      response.headers.append("set-cookie", "b=2");
      response.headers.set("content-length", "999");
      return response;
    },
    "/bytes": () => new Response(encoder.encode("x"), { headers: { "content-type": "application/octet-stream" } }),
    // A string body with a Content-Type of its own (the OpenStack and admin JSON answers).
    "/typed-string": () => new Response("{}\n", { headers: { "content-type": "application/json" } }),
  };
  const server = serveGuests(
    { hostname: "127.0.0.1", port: 0 },
    (request) => responses[new URL(request.url).pathname]!(),
  );
  try {
    const head = async (path: string) => {
      const { text } = await exchange(server.addr.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      return text.slice(0, text.indexOf("\r\n\r\n")).toLowerCase().split("\r\n").filter((line) =>
        !line.startsWith("date:")
      );
    };
    assertEquals(await head("/string"), [
      "http/1.1 200 ok",
      "content-type: text/plain;charset=utf-8",
      "content-length: 1",
      "connection: close",
    ]);
    assertEquals((await head("/json"))[1], "content-type: application/json");
    assertEquals(await head("/headers"), [
      // In the Headers' own (sorted) order; the two cookies stay apart, in order.
      "http/1.1 404 not found",
      "content-type: text/plain;charset=utf-8",
      "set-cookie: a=1",
      "set-cookie: b=2",
      "x-a: 1",
      "content-length: 1",
      "connection: close",
    ]);
    assertEquals((await head("/bytes"))[1], "content-type: application/octet-stream");
    assertEquals((await head("/typed-string"))[1], "content-type: application/json");
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});

Deno.test("serveGuests() writes an answer prepared ahead whole in every framing: kept alive, closing, HTTP/1.0, HEAD", async () => {
  const prepared = new PreparedAnswer(200, { "Content-Type": "text/plain", "x-kind": "ahead" }, "i-0123");
  const server = serveGuests({
    hostname: "127.0.0.1",
    port: 0,
    answerAhead: (request) => request.path === "/ahead" ? prepared : null,
  }, () => new Response("handler"));
  const fields = (text: string) =>
    text.split("\r\n\r\n")[0]!.split("\r\n").slice(1).filter((f) => !f.startsWith("date:"));
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await send(conn, "GET /ahead HTTP/1.1\r\nHost: a\r\n\r\nGET /ahead HTTP/1.1\r\nHost: a\r\n\r\n");
      const kept = await readResponses(conn, 2);
      for (const text of kept) {
        assertMatch(text, /^HTTP\/1\.1 200 OK\r\ndate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
        assertEquals(fields(text), ["content-type: text/plain", "x-kind: ahead", "content-length: 6"]);
        assert.ok(text.endsWith("\r\n\r\ni-0123"));
      }
      await send(conn, "GET /other HTTP/1.1\r\nHost: a\r\n\r\n");
      assert.ok(
        (await readResponses(conn, 1))[0]!.endsWith("\r\n\r\nhandler"),
        "null sends the request on to the handler",
      );
    } finally {
      conn.close();
    }
    const closing = await exchange(server.addr.port, "GET /ahead HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assertEquals(fields(closing.text), [
      "content-type: text/plain",
      "x-kind: ahead",
      "content-length: 6",
      "connection: close",
    ]);
    assert.ok(closing.text.endsWith("\r\n\r\ni-0123") && closing.closed);
    const conn10 = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await send(conn10, "GET /ahead HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      const [text10] = await readResponses(conn10, 1);
      assertMatch(text10!, /^HTTP\/1\.1 200 OK\r\n/);
      assertEquals(fields(text10!), [
        "content-type: text/plain",
        "x-kind: ahead",
        "content-length: 6",
        "connection: keep-alive",
      ]);
    } finally {
      conn10.close();
    }
    const head = await exchange(server.addr.port, "HEAD /ahead HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert.ok(
      head.text.endsWith("content-length: 6\r\nconnection: close\r\n\r\n"),
      "HEAD: the length of the body left out",
    );
  } finally {
    await server.shutdown({ deadlineMs: 500 });
  }
});
