/**
 * Seeded property-based tests: the metadata and admin handlers, called
 * directly with generated requests, never answer 5xx and never throw; the
 * domain XML reader only ever throws its own two error classes; the INI
 * reader only ever throws SyntaxError. Seeds are fixed and printed, so a
 * failure names the case that reproduces it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { InvalidDomainError, InvalidDomainXmlError, parseDomainXml } from "../src/domain/mod.ts";
import { createAdminHandler, createMetadataHandler, type Handler } from "../src/http/mod.ts";
import { parseIni } from "../src/config/ini.ts";
import { Metrics, silentLogger } from "../src/log/mod.ts";
import { createStore } from "../src/service/mod.ts";
import { AccessRecorder } from "../src/store/mod.ts";
import { BUILTIN_USER_DATA, TemplateRenderer } from "../src/user_data/mod.ts";
import { baseConfigText, domainXml } from "./_harness.ts";

// ------------------------------------------------------------------ PRNG

/** mulberry32: a small, fast, seeded 32-bit generator. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)]!,
    string(alphabet: readonly string[], max: number) {
      let out = "";
      for (let i = int(max + 1); i > 0; i--) out += alphabet[int(alphabet.length)]!;
      return out;
    },
  };
}

type Random = ReturnType<typeof prng>;

// ------------------------------------------------------------------ router

const GUEST_A = { name: "fuzz-a", uuid: "f0220000-0000-4000-8000-00000000000a", mac: "52:54:00:f0:00:0a" };
const GUEST_B = { name: "fuzz-b", uuid: "f0220000-0000-4000-8000-00000000000b", mac: "52:54:00:f0:00:0b" };

const SEGMENTS = [
  "latest",
  "2021-03-23",
  "2009-04-04",
  "1.0",
  "2099-99-99",
  "meta-data",
  "user-data",
  "dynamic",
  "instance-identity",
  "document",
  "api",
  "token",
  "openstack",
  "nocloud",
  "service",
  "configuration",
  "version",
  "meta_data.json",
  "user_data",
  "vendor_data.json",
  "vendor_data2.json",
  "network_data.json",
  "vendor-data",
  "network-config",
  "public-keys",
  "0",
  "1",
  "0=default",
  "openssh-key",
  "network",
  "interfaces",
  "macs",
  GUEST_A.mac,
  GUEST_B.mac,
  "local-ipv4s",
  "tags",
  "instance",
  "placement",
  "instance-upload",
  "phone-home",
  "v1",
  "instances",
  "health",
  "metrics",
  "known-hosts",
  "stopped",
  GUEST_A.name,
  GUEST_B.uuid,
  "i-f022000000004000",
  "..",
  ".",
  "%2e",
  "%2e%2e",
  "%2E%2E%2f",
  "%00",
  "%2f",
  "%",
  "%zz",
  "%E0%A4%A",
  "%ff%fe",
  "",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "é",
  "%F0%9F%92%A5",
  "a".repeat(3000),
  "x".repeat(70000),
];

/** Real routes of each listener, mutated by randomRequest(), so that many requests get deep into the handlers. */
const METADATA_ROUTES = [
  ["latest", "meta-data", ""],
  ["2021-03-23", "meta-data", "public-keys", "0", "openssh-key"],
  ["latest", "meta-data", "network", "interfaces", "macs", GUEST_A.mac, "local-ipv4s"],
  ["latest", "user-data"],
  ["latest", "dynamic", "instance-identity", "document"],
  ["latest", "api", "token"],
  ["openstack", "latest", "meta_data.json"],
  ["openstack", "2018-08-27", "vendor_data2.json"],
  ["openstack", "latest", "user_data"],
  ["nocloud", "meta-data"],
  ["nocloud", "vendor-data"],
  ["service", "configuration"],
  ["phone-home"],
  ["instance-upload"],
];

const ADMIN_ROUTES = [
  ["v1", "instances"],
  ["v1", "instances", GUEST_A.name],
  ["v1", "instances", GUEST_B.uuid, "user-data"],
  ["v1", "instances", "x".repeat(70000)],
  ["v1", "instances", GUEST_A.mac, "openstack", "network_data.json"],
  ["v1", "instances", GUEST_B.name, "stopped"],
  ["v1", "known-hosts"],
  ["health"],
];

const METHODS = ["GET", "GET", "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "BREW", "get", "M-SEARCH"];
const HEADER_NAMES = [
  "x-aws-ec2-metadata-token",
  "x-aws-ec2-metadata-token-ttl-seconds",
  "x-forwarded-for",
  "content-type",
  "accept",
  "x-random",
];
const TTL_VALUES = ["1", "21600", "21601", "0", "-1", "60", "1e3", "0x10", " 60 ", "", "NaN", "99999999999999999999"];
const TEXT = ["a", "b", "<", ">", "&", ";", "=", "%", "/", "\u0000", "é", "💥", " ", "\n", "{{", "<%"];

interface Fixture {
  metadata: Handler[];
  admin: ((request: Request, info: { remoteAddr: Deno.Addr }) => Promise<Response>)[];
  sources: string[];
  /** Addresses of registered guests. */
  guests: string[];
  tokens: string[];
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-fuzz-" });
  await Deno.mkdir(join(dir, "userdata"));
  await Deno.writeTextFile(join(dir, "userdata", `${GUEST_A.name}.yaml`), "#cloud-config\nhostname: {{hostname}}\n");
  await Deno.writeTextFile(join(dir, "userdata", "vendor.yaml"), "#cloud-config\nbootcmd: [echo <%= it.name %>]\n");
  const network = { address: "127.78.0.0", prefix: 16, gateway: "127.78.0.1" };
  const kvs: Deno.Kv[] = [];
  const metadata: Handler[] = [];
  const admin: Fixture["admin"] = [];
  const sources = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1", "127.78.0.199", "10.0.0.1", "169.254.169.254"]);
  for (const tokens of ["optional", "required"]) {
    const file = join(dir, `${tokens}.conf`);
    await Deno.writeTextFile(
      file,
      baseConfigText(dir, network).replace(
        "[mdserver]\n",
        `[mdserver]\nimds_tokens = ${tokens}\nvendordata_template = userdata/vendor.yaml\n`,
      ),
    );
    const config = await loadConfig(file);
    const kv = await Deno.openKv(":memory:");
    kvs.push(kv);
    const store = createStore(kv, config);
    for (const guest of [GUEST_A, GUEST_B]) {
      const { instance } = await store.upsert({ ...guest, vcpus: 1, memoryMiB: 512, metadata: {}, tags: {} });
      sources.add(instance.ipv4);
      sources.add(`::ffff:${instance.ipv4}`);
    }
    const renderer = new TemplateRenderer({
      userdataDir: config.mdserver.userdataDir,
      suffixes: config.mdserver.userdataSuffixes,
      defaultTemplate: null,
    }, { builtinTemplate: BUILTIN_USER_DATA });
    const deps = {
      config,
      store,
      renderer,
      log: silentLogger,
      access: new AccessRecorder(kv, { log: silentLogger }),
      metrics: new Metrics(),
    };
    metadata.push(createMetadataHandler(deps));
    admin.push(createAdminHandler(deps));
  }
  // Real tokens, so that valid, foreign and mangled ones are all tried.
  const tokens: string[] = ["", "v1.", "v1.x.y", "not-a-token"];
  for (const handler of metadata) {
    for (const source of [...sources].filter((address) => address.startsWith("127.78."))) {
      const response = await handler(
        new Request("http://169.254.169.254/latest/api/token", {
          method: "PUT",
          headers: { "x-aws-ec2-metadata-token-ttl-seconds": "600" },
        }),
        { remoteAddr: { transport: "tcp", hostname: source, port: 40000 } },
      );
      const token = await response.text();
      tokens.push(token, token.slice(0, -1), `${token}x`, token.toUpperCase());
    }
  }
  return {
    metadata,
    admin,
    sources: [...sources],
    guests: [...sources].filter((address) => address.startsWith("127.78.")),
    tokens,
    async close() {
      for (const kv of kvs) kv.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function randomRequest(
  random: Random,
  fixture: Fixture,
  admin: boolean,
): { request: Request; describe: string } | null {
  const method = random.chance(0.5)
    ? "GET"
    : random.chance(0.1)
    ? random.string(["A", "B", "Z", "-", "_", "!"], 8) || "GET"
    : random.pick(METHODS);
  const segments = random.chance(0.3)
    ? Array.from({ length: random.int(7) }, () => random.pick(SEGMENTS))
    : [...random.pick(admin ? ADMIN_ROUTES : METADATA_ROUTES)];
  for (let i = random.chance(0.5) ? 0 : 1 + random.int(3); i > 0; i--) {
    const at = random.int(segments.length + 1);
    if (random.chance(0.5)) segments.splice(at, 1, random.pick(SEGMENTS));
    else segments.splice(at, 0, random.pick(SEGMENTS));
  }
  let path = "/" + segments.join("/");
  if (random.chance(0.15)) path += "/";
  if (random.chance(0.1)) path += "?" + random.string(TEXT.concat(["&", "="]), 20);
  const headers = new Headers();
  for (let i = random.int(4); i > 0; i--) {
    const name = random.pick(HEADER_NAMES);
    const value = name.endsWith("ttl-seconds")
      ? random.pick(TTL_VALUES)
      : name.endsWith("token")
      ? random.pick(fixture.tokens)
      : random.string(["a", "1", ".", ",", " ", "é"], 40);
    try {
      headers.set(name, value);
    } catch {
      // a value Headers refuses cannot reach the server either
    }
  }
  let body: BodyInit | undefined;
  if ((method === "POST" || method === "PUT") && random.chance(0.7)) {
    body = random.pick([
      () => domainXml({ name: `gen-${random.int(50)}`, uuid: crypto.randomUUID(), mac: "52:54:00:00:00:01" }),
      () => random.string(TEXT, 200),
      () => "instance_id=i-0&hostname=x&pub_key_ed25519=" + random.string(TEXT, 30),
      () => new Uint8Array(Array.from({ length: random.int(300) }, () => random.int(256))),
    ])();
  }
  let request: Request;
  try {
    request = new Request(`http://169.254.169.254${path}`, { method, headers, ...(body ? { body } : {}) });
  } catch {
    return null; // a method or URL fetch itself refuses
  }
  return { request, describe: `${method} ${path.slice(0, 120)} ${JSON.stringify([...headers]).slice(0, 200)}` };
}

Deno.test("the metadata and admin handlers never answer 5xx nor throw on generated requests", async () => {
  const seed = 20261121;
  const cases = 3000;
  console.log(`router fuzz: seed ${seed}, ${cases} cases`);
  const random = prng(seed);
  const f = await fixture();
  try {
    const statuses = new Map<number, number>();
    for (let n = 0; n < cases; n++) {
      const admin = random.chance(0.25);
      const generated = randomRequest(random, f, admin);
      if (generated === null) continue;
      const handler = admin ? random.pick(f.admin) : random.pick(f.metadata);
      // Guests ask the metadata listener, the host the admin one; strangers try both.
      const source = random.chance(0.6) ? (admin ? "127.0.0.1" : random.pick(f.guests)) : random.pick(f.sources);
      const what = `case ${n} (seed ${seed}): ${admin ? "admin" : "metadata"} from ${source}: ${generated.describe}`;
      let response: Response;
      try {
        // The host reaches the admin API over its socket (TCP needs the token); strangers over TCP.
        const remoteAddr: Deno.Addr = admin && source === "127.0.0.1"
          ? { transport: "unix", path: "/run/mdserver/admin.sock" }
          : { transport: "tcp", hostname: source, port: 40000 };
        response = await handler(generated.request, { remoteAddr } as Deno.ServeHandlerInfo<Deno.NetAddr>);
        await response.arrayBuffer();
      } catch (error) {
        assert.fail(`${what}: threw ${(error as Error).stack}`);
      }
      assert.ok(response.status < 500, `${what}: ${response.status}`);
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    }
    console.log(`router fuzz statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    const sent = [...statuses.values()].reduce((sum, count) => sum + count, 0);
    assert.ok(sent > cases * 0.9, `only ${sent} requests could be built`);
    assert.ok((statuses.get(200) ?? 0) > cases / 20, "too few requests reached a document");
  } finally {
    await f.close();
  }
});

// ------------------------------------------------------------------ XML

const XML_PIECES = [
  "<",
  ">",
  "</",
  "/>",
  "&",
  ";",
  "&amp;",
  "&lt;",
  "&#x0;",
  "&#65;",
  "&#xD800;",
  "&#1114112;",
  "&foo;",
  "'",
  '"',
  "=",
  "<!DOCTYPE x>",
  "<!ENTITY a 'b'>",
  "<![CDATA[",
  "]]>",
  "<!--",
  "-->",
  "<?xml version='1.0'?>",
  "<?",
  "?>",
  "<name>",
  "</name>",
  "<uuid>",
  "</uuid>",
  "<domain>",
  "</domain>",
  "<interface type='network'>",
  "<mac address='52:54:00:00:00:01'/>",
  "<source network='mds'/>",
  "<metadata>",
  "<mdserver:x xmlns:mdserver='md_server'>",
  "</mdserver:x>",
  "<memory unit='GiB'>",
  "99999999999999999999",
  "xmlns:a='b'",
  "a",
  "é",
  "💥",
  "\u0000",
  "\uFEFF",
  "\uD800",
  " ",
  "\n",
];

/** Deletes, inserts (from pieces), repeats, cuts and copies random stretches of text. */
function mutate(random: Random, text: string, pieces: readonly string[]): string {
  let out = text;
  for (let i = 1 + random.int(4); i > 0; i--) {
    const at = random.int(out.length + 1);
    const length = random.int(40);
    switch (random.int(5)) {
      case 0:
        out = out.slice(0, at) + out.slice(at + length);
        break;
      case 1:
        out = out.slice(0, at) + random.string(pieces, 5) + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at, at + length).repeat(1 + random.int(50)) + out.slice(at + length);
        break;
      case 3:
        out = out.slice(0, at);
        break;
      default: {
        const other = random.int(out.length + 1);
        out = out.slice(0, at) + out.slice(other, other + length) + out.slice(at);
      }
    }
  }
  return out;
}

Deno.test("parseDomainXml() throws only InvalidDomainXmlError or InvalidDomainError on mutated and random documents", () => {
  const seed = 4242;
  const cases = 6000;
  console.log(`XML fuzz: seed ${seed}, ${cases} cases`);
  const random = prng(seed);
  const valid = domainXml({
    name: "web01",
    uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
    mac: "52:54:00:12:34:56",
    metadata: `<mdserver:instance xmlns:mdserver="https://github.com/sjjf/md_server">
      <mdserver:role>web</mdserver:role>
      <mdserver:tags><mdserver:tag name="env">prod</mdserver:tag></mdserver:tags>
    </mdserver:instance>`,
  });
  assert.equal(parseDomainXml(valid).name, "web01");
  const outcomes = { parsed: 0, InvalidDomainXmlError: 0, InvalidDomainError: 0 };
  for (let n = 0; n < cases; n++) {
    const input = random.chance(0.8) ? mutate(random, valid, XML_PIECES) : random.string(XML_PIECES, 60);
    try {
      const info = parseDomainXml(input);
      assert.equal(typeof info.name, "string");
      assert.match(info.uuid, /^[0-9a-f-]{36}$/);
      outcomes.parsed++;
    } catch (error) {
      // Any other class (a TypeError from a bug) would be a 500, not a 400.
      const name = error instanceof InvalidDomainXmlError
        ? "InvalidDomainXmlError"
        : error instanceof InvalidDomainError
        ? "InvalidDomainError"
        : null;
      if (name === null) {
        assert.fail(`case ${n} (seed ${seed}): ${(error as Error).stack}\ninput: ${JSON.stringify(input)}`);
      }
      assert.ok((error as Error).message.length > 0 && !(error as Error).message.includes("\n"), `case ${n}`);
      outcomes[name]++;
    }
  }
  console.log(`XML fuzz outcomes: ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.parsed > 0 && outcomes.InvalidDomainXmlError > 0 && outcomes.InvalidDomainError > 0);
});

// ------------------------------------------------------------------ INI

const INI_PIECES = [
  "[",
  "]",
  "[mdserver]",
  "[dnsmasq]",
  "=",
  ":",
  " = ",
  "key",
  "port",
  "value",
  "#",
  ";",
  "%%",
  "%",
  "%(x)s",
  " ",
  "\t",
  "\n",
  "\r\n",
  "\r",
  "\uFEFF",
  "é",
  "\u0000",
  "__proto__",
  "constructor",
];

Deno.test("parseIni() throws only SyntaxError on random text", async () => {
  const seed = 777;
  const cases = 5000;
  console.log(`INI fuzz: seed ${seed}, ${cases} cases`);
  const random = prng(seed);
  const sample = await Deno.readTextFile(new URL("../config/mdserver.conf", import.meta.url));
  const outcomes = { parsed: 0, SyntaxError: 0 };
  for (let n = 0; n < cases; n++) {
    const input = random.chance(0.5) ? random.string(INI_PIECES, 80) : mutate(random, sample, INI_PIECES);
    try {
      const document = parseIni(input, "fuzz.conf");
      for (const entry of document.entries) assert.equal(typeof entry.value, "string");
      outcomes.parsed++;
    } catch (error) {
      if (!(error instanceof SyntaxError)) {
        assert.fail(`case ${n} (seed ${seed}): ${(error as Error).stack}\ninput: ${JSON.stringify(input)}`);
      }
      assert.match(error.message, /^Cannot parse config "fuzz\.conf": line \d+: /);
      outcomes.SyntaxError++;
    }
  }
  console.log(`INI fuzz outcomes: ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.parsed > 0 && outcomes.SyntaxError > 0);
});
