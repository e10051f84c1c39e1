/**
 * Every guest API under the same rules: a switch per API, `imds_tokens =
 * required` holding for all of them, and routing by the request line alone,
 * whatever the Host header says, with a log line and a metric per request.
 */
import assert from "node:assert/strict";
import type { Logger } from "../src/log/log.ts";
import { startTestService, type TestService } from "./_harness.ts";

const WEB = { name: "web01", uuid: "5e5e5e5e-0000-4000-8000-000000000001", mac: "52:54:00:5e:00:01" };

/** A guest path of each API, and what a token-less read of user-data is. */
const API_PATHS = {
  ec2: ["/latest/meta-data/instance-id", "/latest/user-data"],
  openstack: ["/openstack/latest/meta_data.json", "/openstack/latest/user_data"],
  nocloud: ["/nocloud/meta-data", "/nocloud/user-data"],
} as const;
type Api = keyof typeof API_PATHS;
const APIS = Object.keys(API_PATHS) as Api[];

async function token(t: TestService, ip: string): Promise<Response> {
  return await t.guestFetch(ip, "/latest/api/token", {
    method: "PUT",
    headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
  });
}

for (let mask = 0; mask < 8; mask++) {
  const on = Object.fromEntries(APIS.map((api, i) => [api, (mask & (1 << i)) !== 0])) as Record<Api, boolean>;
  const label = APIS.map((api) => `${api} = ${on[api] ? "yes" : "no"}`).join(", ");
  for (const tokens of ["optional", "required"] as const) {
    if (tokens === "required" && !on.ec2) continue; // refused by the configuration: tested below
    Deno.test(`${label}, imds_tokens = ${tokens}: each API answers as its switch and the token rule say`, async () => {
      const t = await startTestService({
        ini: `[mdserver]\nimds_tokens = ${tokens}\n${
          APIS.map((api) => `${api} = ${on[api] ? "yes" : "no"}`).join("\n")
        }\n`,
      });
      try {
        const { ipv4 } = await t.register(WEB);
        const tokenResponse = await token(t, ipv4);
        const value = await tokenResponse.text();
        assert.equal(tokenResponse.status, on.ec2 ? 200 : 404);
        for (const api of APIS) {
          for (const path of API_PATHS[api]) {
            const bare = await t.guestFetch(ipv4, path);
            const bareBody = await bare.text();
            if (!on[api]) {
              assert.equal(bare.status, 404, `${path}`);
              assert.match(bareBody, new RegExp(`API is off \\(\\[mdserver\\] ${api} = no\\)`));
              continue;
            }
            assert.equal(bare.status, tokens === "required" ? 401 : 200, `${path} without a token: ${bareBody}`);
            if (!on.ec2) continue; // no token to be had
            const withToken = await t.guestFetch(ipv4, path, { headers: { "x-aws-ec2-metadata-token": value } });
            await withToken.body?.cancel();
            assert.equal(withToken.status, 200, `${path} with a token`);
          }
        }
      } finally {
        await t.close();
      }
    });
  }
}

Deno.test("imds_tokens = required with ec2 = no is refused by the configuration", async () => {
  await assert.rejects(
    () => startTestService({ ini: "[mdserver]\nimds_tokens = required\nec2 = no\n" }),
    /imds_tokens: "required" needs ec2 = yes/,
  );
});

/** Sends one raw HTTP/1.1 request and returns the status line's code and the body. */
async function rawRequest(target: number | Deno.NetAddr, requestLine: string, host: string | null) {
  const conn = await Deno.connect(
    typeof target === "number"
      ? { hostname: "127.0.0.1", port: target }
      : { hostname: target.hostname, port: target.port },
  );
  try {
    const headers = host === null ? "" : `Host: ${host}\r\n`;
    await conn.write(new TextEncoder().encode(`${requestLine}\r\n${headers}Connection: close\r\n\r\n`));
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16384);
    for (let i = 0; i < 100; i++) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((chunk) => [...chunk])));
    const status = Number(text.split(" ")[1]);
    return { status, body: text.split("\r\n\r\n").slice(1).join("\r\n\r\n") };
  } finally {
    conn.close();
  }
}

function recordingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const push = (line: string) => lines.push(line);
  return { log: { debug() {}, info: push, warning: push, error: push }, lines };
}

async function requestCount(t: TestService): Promise<number> {
  const text = await t.service.metrics.render();
  return text.split("\n").filter((line) => line.startsWith("mdserver_requests_total"))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

const HOSTILE_HOSTS = ["[", "%", "a b", ":99999", "x/latest/user-data?", "x#y", "u@h", "x\\y", ""];

Deno.test("any Host header gets the answer a correct one gets, never a 5xx, with a log line and a metric, on both listeners", async () => {
  const { log, lines } = recordingLogger();
  const t = await startTestService({ log, adminTcp: true });
  try {
    // 127.0.0.1 is not a guest: a stranger's answer (404) is what every Host must give alike.
    const metadataPort = t.service.metadataPort;
    const adminUrl = new URL(t.adminUrl!);
    const adminPort: Deno.NetAddr = { transport: "tcp", hostname: adminUrl.hostname, port: Number(adminUrl.port) };
    const cases: [number | Deno.NetAddr, string, string][] = [
      [metadataPort, "GET /latest/meta-data/instance-id HTTP/1.1", "169.254.169.254"],
      [metadataPort, "GET /service/name HTTP/1.1", "169.254.169.254"],
      [adminPort, "GET /v1/instances HTTP/1.1", "127.0.0.1"],
      [adminPort, "GET /health HTTP/1.1", "127.0.0.1"],
    ];
    for (const [port, requestLine, goodHost] of cases) {
      const expected = await rawRequest(port, requestLine, goodHost);
      // The guest server answers an HTTP/1.1 request without Host 400, as RFC 9112 asks; Deno's (admin) does not.
      for (const host of port === metadataPort ? HOSTILE_HOSTS : [...HOSTILE_HOSTS, null]) {
        const linesBefore = lines.length;
        const countBefore = await requestCount(t);
        const answer = await rawRequest(port, requestLine, host);
        assert.ok(answer.status < 500, `${requestLine} Host ${JSON.stringify(host)}: ${answer.status}`);
        assert.deepEqual(answer, expected, `${requestLine} with Host ${JSON.stringify(host)}`);
        assert.ok(lines.length > linesBefore, `a log line for Host ${JSON.stringify(host)}`);
        if (!requestLine.includes("/metrics")) {
          assert.equal(await requestCount(t), countBefore + 1, `a metric for Host ${JSON.stringify(host)}`);
        }
      }
    }
  } finally {
    await t.close();
  }
});

Deno.test("Host: x/latest/user-data? on a request for instance-id answers the instance-id", async () => {
  const t = await startTestService();
  try {
    const { ipv4, instance_id } = await t.register(WEB);
    const response = await t.guestFetch(ipv4, "/latest/meta-data/instance-id", {
      headers: { host: "x/latest/user-data?" },
    });
    assert.equal(await response.text(), instance_id);
  } finally {
    await t.close();
  }
});
