/**
 * Hostile input, from the corpus in tests/hostile/ (cases.json says what
 * each file must get): every refused upload and odd request gets a 4xx with
 * a clear one-line reason, the store and dnsmasq's files stay exactly as
 * they were, and the service keeps serving. Names that are hostile but
 * legal are stored, reach dnsmasq only as DNS labels, and are never
 * evaluated as templates or by a shell.
 *
 * Requests go over raw sockets (Deno.connect), so that nothing normalises
 * them on the way.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { domainXml, startTestService, type TestService } from "./_harness.ts";
import { parseIpv4 } from "../src/ipam/ipv4.ts";
import { ipv6ForIpv4 } from "../src/ipam/ipv6.ts";

const CORPUS = new URL("./hostile/", import.meta.url);

interface Expectation {
  status: number;
  message: string | null;
}

interface Cases {
  uploads: Record<string, Expectation>;
  accepted: Record<string, { label: string }>;
  requests: Record<string, Expectation & { listener: "metadata" | "admin"; halfClose?: boolean }>;
}

const CASES: Cases = JSON.parse(await Deno.readTextFile(new URL("cases.json", CORPUS)));

const KEEPER = { name: "keeper", uuid: "0e0e0e0e-0000-4000-8000-000000000001", mac: "52:54:00:0e:e0:01" };
const PASSWORD = "hostile-s3cret-pw";
const PWNED = "mdserver-hostile-pwned";

// ------------------------------------------------------------------ corpus

/** Bytes as a string of one character per byte, so expansion works on raw bytes. */
function toBinary(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}

function fromBinary(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** A corpus file with `${repeat:N:TEXT}` expanded (innermost first); LF → CRLF for HTTP requests. */
async function corpusFile(file: string, options: { crlf?: boolean } = {}): Promise<Uint8Array> {
  let text = toBinary(await Deno.readFile(new URL(file, CORPUS)));
  let previous;
  do {
    previous = text;
    text = text.replace(
      /\$\{repeat:(\d+):([^${}]*)\}/g,
      (_, count: string, part: string) => part.repeat(Number(count)),
    );
  } while (text !== previous);
  if (options.crlf) text = text.replaceAll("\n", "\r\n");
  return fromBinary(text);
}

// ------------------------------------------------------------------ raw HTTP

interface RawResponse {
  status: number;
  head: string;
  body: string;
}

function indexOfSequence(haystack: Uint8Array, needle: number[], from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Sends bytes over a fresh connection (optionally shutting its sending side
 * afterwards) and reads one response (head, then
 * content-length bytes of body, or up to the close). The request is written
 * while the response is read, since a server may answer (413) before taking
 * a large body. Status 0: the connection closed without an answer.
 */
async function rawRequest(
  target: number | string,
  request: Uint8Array,
  options: { halfClose?: boolean } = {},
): Promise<RawResponse> {
  // A port on 127.0.0.1, or the admin API's unix socket.
  const conn = typeof target === "number"
    ? await Deno.connect({ hostname: "127.0.0.1", port: target })
    : await Deno.connect({ transport: "unix", path: target });
  const writing = (async () => {
    try {
      for (let offset = 0; offset < request.length;) offset += await conn.write(request.subarray(offset));
      if (options.halfClose) await conn.closeWrite();
    } catch {
      // The server answered and closed before taking everything: fine.
    }
  })();
  let received = new Uint8Array(0);
  const buffer = new Uint8Array(64 * 1024);
  const timer = setTimeout(() => conn.close(), 20_000);
  let closed = false;
  try {
    while (true) {
      const headEnd = indexOfSequence(received, [13, 10, 13, 10]);
      if (headEnd !== -1) {
        const head = new TextDecoder().decode(received.subarray(0, headEnd));
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (length && received.length - headEnd - 4 >= Number(length[1])) break;
      }
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch {
        n = null;
      }
      if (n === null) {
        closed = true;
        break;
      }
      const next = new Uint8Array(received.length + n);
      next.set(received);
      next.set(buffer.subarray(0, n), received.length);
      received = next;
    }
  } finally {
    clearTimeout(timer);
    if (!closed) {
      try {
        conn.close();
      } catch {
        // closed by the timer
      }
    }
  }
  await writing;
  const text = new TextDecoder().decode(received);
  const headEnd = text.indexOf("\r\n\r\n");
  const head = headEnd === -1 ? text : text.slice(0, headEnd);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  return { status, head, body: headEnd === -1 ? "" : text.slice(headEnd + 4) };
}

/** A raw upload of XML bytes to one of the two upload endpoints. */
function uploadRequest(path: string, body: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/xml\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
  );
  const bytes = new Uint8Array(head.length + body.length);
  bytes.set(head);
  bytes.set(body, head.length);
  return bytes;
}

// ------------------------------------------------------------------ state

/** Every KV entry with its versionstamp: any write shows. */
async function kvSnapshot(kv: Deno.Kv): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of kv.list({ prefix: [] })) {
    out.push(Deno.inspect({ key: entry.key, value: entry.value, versionstamp: entry.versionstamp }, {
      depth: 10,
      sorted: true,
    }));
  }
  return out;
}

/** Every file under a folder, path → content. */
async function treeSnapshot(dir: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = join(prefix, entry.name);
    if (entry.isDirectory) Object.assign(out, await treeSnapshot(dir, path));
    else out[path] = await Deno.readTextFile(join(dir, path));
  }
  return out;
}

async function withKeeper(ini: string, body: (t: TestService, keeperIp: string) => Promise<void>) {
  const template = `#cloud-config
hostname: {{hostname}}
write_files:
  - path: /etc/mdserver-name
    content: <%= JSON.stringify(it.name) %>
`;
  const t = await startTestService({ ini, userdata: { "default.yaml": template } });
  try {
    const response = await t.upload(domainXml(KEEPER));
    const keeper = await response.json();
    assert.equal(response.status, 201);
    await body(t, keeper.ipv4);
  } finally {
    await t.close();
  }
}

/** The service still serves its guest and takes a good upload. */
async function assertStillServing(t: TestService, keeperIp: string) {
  const response = await t.guestFetch(keeperIp, "/latest/meta-data/instance-id");
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "i-0e0e0e0e000040008000000000000001");
  const upload = await t.upload(
    domainXml({ name: "after", uuid: "0e0e0e0e-0000-4000-8000-0000000000ff", mac: "52:54:00:0e:e0:ff" }),
  );
  assert.equal(upload.status, 201, await upload.text());
}

function assertClearMessage(what: string, response: RawResponse, expected: Expectation) {
  assert.equal(response.status, expected.status, `${what}: got ${response.status}\n${response.head}\n${response.body}`);
  if (expected.message === null) return;
  const message = response.body.replace(/\n$/, "");
  assert.ok(message.length > 0 && !message.includes("\n"), `${what}: not one line: ${JSON.stringify(message)}`);
  assert.match(message, new RegExp(expected.message), `${what}: unexpected message`);
}

// ------------------------------------------------------------------ tests

Deno.test("hostile domain XML gets a 4xx with a clear reason from both upload endpoints and changes nothing", async () => {
  await withKeeper("", async (t, keeperIp) => {
    const kvBefore = await kvSnapshot(t.service.store.kv);
    const filesBefore = await treeSnapshot(t.config.dnsmasq.baseDir);
    for (const [file, expected] of Object.entries(CASES.uploads)) {
      const body = await corpusFile(file);
      const upload = await rawRequest(t.service.metadataPort, uploadRequest("/instance-upload", body));
      assertClearMessage(`${file} to /instance-upload`, upload, expected);
      const admin = await rawRequest(t.adminSocket, uploadRequest("/v1/instances", body));
      assertClearMessage(`${file} to the admin API`, admin, expected);
    }
    assert.deepEqual(await kvSnapshot(t.service.store.kv), kvBefore);
    assert.deepEqual(await treeSnapshot(t.config.dnsmasq.baseDir), filesBefore);
    await assertStillServing(t, keeperIp);
  });
});

Deno.test("odd HTTP requests get a 4xx, a clear reason where mdserver answers, and change nothing", async () => {
  await withKeeper("", async (t, keeperIp) => {
    const kvBefore = await kvSnapshot(t.service.store.kv);
    const filesBefore = await treeSnapshot(t.config.dnsmasq.baseDir);
    for (const [file, expected] of Object.entries(CASES.requests)) {
      const port = expected.listener === "admin" ? t.adminSocket : t.service.metadataPort;
      const response = await rawRequest(port, await corpusFile(file, { crlf: true }), {
        halfClose: expected.halfClose ?? false,
      });
      assertClearMessage(file, response, expected);
    }
    assert.deepEqual(await kvSnapshot(t.service.store.kv), kvBefore);
    assert.deepEqual(await treeSnapshot(t.config.dnsmasq.baseDir), filesBefore);
    await assertStillServing(t, keeperIp);
  });
});

Deno.test("hostile but legal names are stored, reach dnsmasq only as DNS labels and are never evaluated", async () => {
  const ini = `[mdserver]\npassword = ${PASSWORD}\ndefault_template = default.yaml\n`;
  await withKeeper(ini, async (t) => {
    const { dhcpHostsDir, hostsDir } = { dhcpHostsDir: "dhcp-hosts", hostsDir: "hosts" };
    for (const [file, { label }] of Object.entries(CASES.accepted)) {
      const xml = new TextDecoder().decode(await corpusFile(file));
      const name = /<name>(.*)<\/name>/.exec(xml)![1]!.replaceAll("&lt;", "<").replaceAll("&gt;", ">")
        .replaceAll("&amp;", "&");
      const response = await t.upload(xml);
      const uploaded = await response.json();
      assert.equal(response.status, 201, `${file}: ${JSON.stringify(uploaded)}`);
      assert.equal(uploaded.name, name, file);
      const ip: string = uploaded.ipv4;
      const get = async (path: string) => {
        const answer = await t.guestFetch(ip, path);
        const body = await answer.text();
        assert.equal(answer.status, 200, `${file}: ${path}: ${body}`);
        assert.ok(!body.includes(PASSWORD), `${file}: ${path} leaks the password`);
        return body;
      };

      assert.equal(await get("/latest/meta-data/local-hostname"), `${label}.test.internal`, file);
      // The template sees the raw name as data, never as template text.
      const userData = parseYaml(await get("/latest/user-data"));
      assert.equal(userData.hostname, label, file);
      assert.equal(userData.write_files[0].content, name, file);
      assert.equal(JSON.parse(await get("/openstack/latest/meta_data.json")).name, name, file);
      assert.equal(parseYaml(await get("/nocloud/meta-data"))["local-hostname"], `${label}.test.internal`, file);

      // dnsmasq's records hold the address, the MAC and the label: nothing else.
      const dhcp = await Deno.readTextFile(join(t.config.dnsmasq.baseDir, dhcpHostsDir, uploaded.uuid));
      const ipv6 = ipv6ForIpv4(t.config.dnsmasq.ipv6!, parseIpv4(ip)!);
      assert.equal(dhcp, `${uploaded.mac},id:*,${ip},[${ipv6}],${label},${t.config.dnsmasq.leaseLen}\n`, file);
      const hosts = await Deno.readTextFile(join(t.config.dnsmasq.baseDir, hostsDir, uploaded.uuid));
      assert.match(hosts, /^[0-9.]+( [a-z0-9-]+(\.[a-z0-9-]+)*)+\n[0-9a-f:]+( [a-z0-9-]+(\.[a-z0-9-]+)*)+\n$/, file);
      assert.ok(hosts.startsWith(`${ip} ${label}`), `${file}: ${hosts}`);
    }
    // Nothing ran the names through a shell.
    for (const dir of [Deno.cwd(), t.dir, join(t.dir, "userdata"), t.config.dnsmasq.baseDir]) {
      await assert.rejects(Deno.stat(join(dir, PWNED)), Deno.errors.NotFound);
    }
  });
});

Deno.test("every corpus file has an expectation in cases.json and every expectation a file", async () => {
  const files = new Set<string>();
  for await (const entry of Deno.readDir(CORPUS)) if (entry.name !== "cases.json") files.add(entry.name);
  const named = new Set([
    ...Object.keys(CASES.uploads),
    ...Object.keys(CASES.accepted),
    ...Object.keys(CASES.requests),
  ]);
  assert.deepEqual([...files].sort(), [...named].sort());
});
