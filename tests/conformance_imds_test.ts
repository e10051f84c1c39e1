/**
 * IMDSv2 session tokens: Debian's cloud-init DataSourceEc2 on its AWS path
 * (it PUTs for a token first and sends it on every GET) reads mdserver
 * through tokens, and the token rules hold for guests bound to their
 * source addresses.
 */
import assert from "node:assert/strict";
import { domainXml, startTestService, type TestService } from "./_harness.ts";
import { cloudInitClients, runDriver } from "./_cloudinit.ts";

const NETWORK = { address: "127.101.0.0", prefix: 16, gateway: "127.101.0.1" };
const WEB = { name: "web01", uuid: "3c0f2a71-9d4e-4b6a-8f1e-2a3b4c5d6e7f", mac: "52:54:00:10:10:01" };
const DB = { name: "db01", uuid: "7e1d0b92-3a4c-4d5e-9f60-718293a4b5c6", mac: "52:54:00:10:10:02" };
const TTL = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN = "x-aws-ec2-metadata-token";

async function withService(
  ini: string,
  body: (t: TestService, ips: { web: string; db: string }) => Promise<void>,
) {
  const t = await startTestService({
    network: NETWORK,
    ini,
    userdata: { "web01.yaml": "#cloud-config\nhostname: {{hostname}}\n" },
  });
  try {
    const web = (await (await t.upload(domainXml(WEB))).json()).ipv4;
    const db = (await (await t.upload(domainXml(DB))).json()).ipv4;
    await body(t, { web, db });
  } finally {
    await t.close();
  }
}

async function put(t: TestService, ip: string, headers: Record<string, string>) {
  const response = await t.guestFetch(ip, "/latest/api/token", { method: "PUT", headers });
  return { status: response.status, body: await response.text(), ttl: response.headers.get(TTL) };
}

async function get(t: TestService, ip: string, path: string, headers: Record<string, string> = {}) {
  const response = await t.guestFetch(ip, path, { headers });
  return { status: response.status, body: await response.text() };
}

for (const { client, missing } of await cloudInitClients("DataSourceEc2")) {
  Deno.test({
    name: `${client.label}: DataSourceEc2 on the AWS path reads everything through IMDSv2 tokens`,
    ignore: missing !== null,
    async fn() {
      await withService("[mdserver]\nimds_tokens = required\n", async (t, ips) => {
        const { result, stderr } = await runDriver(client, "ec2_aws.py", [t.metadataUrl, ips.web]);

        assert.equal(result.get_data, true, stderr);
        assert.match(result.token, /^v1\./);
        assert.equal(result.instance_id, "i-3c0f2a719d4e4b6a8f1e2a3b4c5d6e7f");
        assert.equal(result.metadata_instance_id, "i-3c0f2a719d4e4b6a8f1e2a3b4c5d6e7f");
        assert.equal(result.identity.instanceId, "i-3c0f2a719d4e4b6a8f1e2a3b4c5d6e7f");
        assert.equal(result.identity.privateIp, ips.web);
        assert.equal(result.local_hostname, "web01");
        assert.equal(result.availability_zone, "testzone");
        assert.equal(result.region, "testzone");
        assert.equal(result.api_version, "2021-03-23");
        assert.deepEqual(result.public_keys.sort(), [
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyDefault test@default",
          "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABTestKeyBackup test@backup",
        ]);
        assert.equal(result.user_data, "#cloud-config\nhostname: web01\n");
        // With imds_tokens = required, the IMDSv1 way in is closed.
        assert.equal(result.tokenless_status, 401);
        assert.equal(result.forged_token_status, 401);
        assert.equal(result.token_status, 200);
      });
    },
  });
}

Deno.test("PUT /latest/api/token takes a TTL of 1 to 21600 seconds and echoes it", async () => {
  await withService("", async (t, ips) => {
    for (const ttl of ["1", "21600"]) {
      const answer = await put(t, ips.web, { [TTL]: ttl });
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.ttl, ttl);
      assert.match(answer.body, /^[A-Za-z0-9._-]{40,}$/);
    }
    for (const ttl of ["0", "21601", "-1", "six", ""]) {
      assert.equal((await put(t, ips.web, { [TTL]: ttl })).status, 400, `TTL "${ttl}"`);
    }
    assert.equal((await put(t, ips.web, {})).status, 400);
    const dated = await t.guestFetch(ips.web, "/2021-03-23/api/token", { method: "PUT", headers: { [TTL]: "60" } });
    assert.equal(dated.status, 200, await dated.text());
    const viaGet = await t.guestFetch(ips.web, "/latest/api/token");
    await viaGet.body?.cancel();
    assert.equal(viaGet.status, 405);
  });
});

Deno.test("a token PUT that went through a proxy (X-Forwarded-For) is refused", async () => {
  await withService("", async (t, ips) => {
    const answer = await put(t, ips.web, { [TTL]: "60", "X-Forwarded-For": "203.0.113.9" });
    assert.equal(answer.status, 403);
    assert.equal(answer.ttl, null);
  });
});

Deno.test("a token works only for the guest that asked for it", async () => {
  await withService("", async (t, ips) => {
    const webToken = (await put(t, ips.web, { [TTL]: "300" })).body;
    assert.deepEqual(await get(t, ips.web, "/latest/meta-data/instance-id", { [TOKEN]: webToken }), {
      status: 200,
      body: "i-3c0f2a719d4e4b6a8f1e2a3b4c5d6e7f",
    });
    assert.equal((await get(t, ips.db, "/latest/meta-data/instance-id", { [TOKEN]: webToken })).status, 401);
    // A stranger gets no token at all.
    assert.equal((await put(t, "127.101.200.200", { [TTL]: "60" })).status, 404);
  });
});

Deno.test("a token expires at its TTL", async () => {
  await withService("", async (t, ips) => {
    const token = (await put(t, ips.web, { [TTL]: "1" })).body;
    // Expiry is at a whole second at most 1 s away; 2.1 s is always past it.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const answer = await get(t, ips.web, "/latest/meta-data/instance-id", { [TOKEN]: token });
    assert.equal(answer.status, 401);
    assert.match(answer.body, /expired/);
  });
});

Deno.test("with optional tokens, a GET without a token works and one with a bad token is 401", async () => {
  await withService("", async (t, ips) => {
    assert.equal((await get(t, ips.web, "/latest/meta-data/instance-id")).status, 200);
    assert.equal((await get(t, ips.web, "/")).status, 200);
    assert.equal((await get(t, ips.web, "/latest/meta-data/instance-id", { [TOKEN]: "junk" })).status, 401);
    assert.equal((await get(t, ips.web, "/", { [TOKEN]: "junk" })).status, 401);
  });
});

Deno.test("with required tokens, every EC2 GET without a valid token is 401", async () => {
  await withService("[mdserver]\nimds_tokens = required\n", async (t, ips) => {
    for (const path of ["/", "/latest/meta-data/", "/2009-04-04/meta-data/instance-id", "/latest/user-data"]) {
      assert.equal((await get(t, ips.web, path)).status, 401, path);
    }
    const token = (await put(t, ips.web, { [TTL]: "60" })).body;
    assert.equal((await get(t, ips.web, "/", { [TOKEN]: token })).status, 200);
    assert.equal((await get(t, ips.web, "/latest/user-data", { [TOKEN]: token })).status, 200);
    assert.equal(
      (await get(t, ips.web, "/latest/dynamic/instance-identity/document", { [TOKEN]: token })).status,
      200,
    );
  });
});

Deno.test("tokens do not outlive the process that issued them", async () => {
  let token = "";
  await withService("", async (t, ips) => {
    token = (await put(t, ips.web, { [TTL]: "21600" })).body;
  });
  await withService("", async (t, ips) => {
    assert.equal((await get(t, ips.web, "/latest/meta-data/instance-id", { [TOKEN]: token })).status, 401);
  });
});
