import assert from "node:assert/strict";
import { http1Request } from "./http1.ts";

/** A loopback server that reads one request head and answers with `answer`'s bytes, then closes. */
function cannedServer(answer: string): { port: number; requests: Promise<string[]>; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(65536);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const count = await conn.read(buffer);
      if (count === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, count));
    }
    await conn.write(new TextEncoder().encode(answer));
    conn.close();
    return [text];
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    close: async () => {
      listener.close();
      await requests.catch(() => {});
    },
  };
}

Deno.test("http1Request() sends the body with its length and reads a content-length answer", async () => {
  const server = cannedServer(
    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nX-Mdserver-Warning: no drive\r\n" +
      'content-length: 11\r\n\r\n{"ok":true}',
  );
  try {
    const answer = await http1Request({ transport: "tcp", hostname: "127.0.0.1", port: server.port }, {
      method: "POST",
      path: "/v1/instances",
      host: "127.0.0.1:8774",
      headers: { "content-type": "application/xml" },
      body: "<domain>é</domain>",
    });
    assert.equal(answer.status, 201);
    assert.equal(answer.statusText, "Created");
    assert.equal(answer.headers.get("x-mdserver-warning"), "no drive");
    assert.equal(answer.body, '{"ok":true}');
    const [request] = await server.requests;
    assert.match(request!, /^POST \/v1\/instances HTTP\/1\.1\r\n/);
    assert.match(request!, /\r\nhost: 127\.0\.0\.1:8774\r\n/);
    assert.match(request!, /\r\ncontent-length: 19\r\n/);
    assert.match(request!, /\r\nconnection: close\r\n/);
  } finally {
    await server.close();
  }
});

Deno.test("http1Request() reads a chunked answer", async () => {
  const server = cannedServer(
    "HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n6\r\nno dom\r\n9;x=1\r\nain XML\r\n\r\n0\r\n\r\n",
  );
  try {
    const answer = await http1Request({ transport: "tcp", hostname: "127.0.0.1", port: server.port }, {
      method: "GET",
      path: "/",
      host: "x",
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.body, "no domain XML\r\n");
  } finally {
    await server.close();
  }
});

Deno.test("http1Request() says where when the answer is cut short, missing, or nobody listens", async () => {
  for (
    const [answer, reason] of [
      ["HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort", /answer cut short in its body \(127\.0\.0\.1:\d+\)$/],
      ["", /closed without an answer \(127\.0\.0\.1:\d+\)$/],
      ["SSH-2.0-OpenSSH\r\n\r\n", /not an HTTP\/1\.1 answer \(127\.0\.0\.1:\d+\)$/],
    ] as const
  ) {
    const server = cannedServer(answer);
    try {
      await assert.rejects(
        http1Request({ transport: "tcp", hostname: "127.0.0.1", port: server.port }, {
          method: "GET",
          path: "/",
          host: "x",
        }),
        reason,
      );
    } finally {
      await server.close();
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "mdserver-http1-" });
  try {
    await assert.rejects(
      http1Request({ transport: "unix", path: `${dir}/admin.sock` }, { method: "GET", path: "/", host: "x" }),
      /\(unix:.*\/admin\.sock\)$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("http1Request() throws the signal's reason when it aborts while waiting for the answer", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const signal = AbortSignal.timeout(100);
    await assert.rejects(
      http1Request({ transport: "tcp", hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }, {
        method: "GET",
        path: "/",
        host: "x",
        signal,
      }),
      (error) => error === signal.reason,
    );
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});
