/**
 * SIGHUP reloads the configuration of a running mdserver process: a valid
 * one takes effect for the next request, an invalid one is refused with
 * every problem logged; a request in flight is answered, the process keeps
 * running and its managed dnsmasq stays the same supervised process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { adminSocketFetch, domainXml } from "./_harness.ts";
import { runCtl } from "../src/cli/ctl.ts";
import { spawnServer, waitForHealth, waitUntil, writeProcessConfig } from "./_process.ts";

const WEB = { name: "reload01", uuid: "0000000a-0000-4000-8000-000000000001", mac: "52:54:00:0a:00:01" };
const OLD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProcessTestKey test@process";
const NEW_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReloadedKey test@reloaded";

Deno.test("SIGHUP: a valid configuration serves the next request, an invalid one is refused and logged, nothing is dropped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-reload-" });
  const steady = join(dir, "steady-dnsmasq");
  // A stand-in dnsmasq that stays up (and ignores the SIGHUPs record changes send it).
  await Deno.writeTextFile(steady, "#!/bin/sh\ntrap '' HUP\nexec sleep 120\n", { mode: 0o755 });
  const network = { address: "127.93.0.0", prefix: 16, gateway: "127.93.0.1" };
  const config = await writeProcessConfig(dir, "reload", { network });
  const original = (await Deno.readTextFile(config.file)).replace("manage = no", `manage = yes\nbinary = ${steady}`);
  await Deno.writeTextFile(config.file, original);
  const server = spawnServer(config.file);
  const clients: Deno.HttpClient[] = [];
  try {
    await waitForHealth(server, config.adminSocket);
    const registered =
      await (await adminSocketFetch(config.adminSocket, "/v1/instances", { method: "POST", body: domainXml(WEB) }))
        .json();
    const client = Deno.createHttpClient({ localAddress: registered.ipv4 });
    clients.push(client);
    const guest = (path: string, init: RequestInit = {}) => fetch(`${config.metadataUrl}${path}`, { ...init, client });
    const key = async (token?: string) => {
      const response = await guest("/latest/meta-data/public-keys/0/openssh-key", {
        headers: token ? { "x-aws-ec2-metadata-token": token } : {},
      });
      return { status: response.status, body: await response.text() };
    };
    assert.deepEqual(await key(), { status: 200, body: OLD_KEY });
    const dnsmasqBefore = (await (await adminSocketFetch(config.adminSocket, "/health")).json()).dnsmasq;
    assert.equal(dnsmasqBefore.state, "running");

    // An upload in flight across the reload: headers and half the body now, the rest after.
    const body = new TextEncoder().encode(
      domainXml({ ...WEB, name: "reload02", uuid: "0000000a-0000-4000-8000-000000000002", mac: "52:54:00:0a:00:02" }),
    );
    const conn = await Deno.connect({ transport: "unix", path: config.adminSocket });
    await conn.write(new TextEncoder().encode(
      `POST /v1/instances HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    ));
    await conn.write(body.subarray(0, 100));

    // A valid new configuration: another key, tokens required, NoCloud off, debug logging.
    await Deno.writeTextFile(
      config.file,
      original.replace(OLD_KEY, NEW_KEY).replace("[mdserver]\n", "[mdserver]\nimds_tokens = required\nnocloud = no\n")
        .replace("[service]", "[loglevels]\nbase = debug\n\n[service]"),
    );
    server.kill("SIGHUP");
    await waitUntil(server, "the reload", () => Promise.resolve(server.log().includes("configuration reloaded")));
    assert.equal((await key()).status, 401);
    const token = await (await guest("/latest/api/token", {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
    })).text();
    assert.deepEqual(await key(token), { status: 200, body: NEW_KEY });
    const nocloud = await guest("/nocloud/meta-data", { headers: { "x-aws-ec2-metadata-token": token } });
    assert.equal(nocloud.status, 404);
    assert.match(await nocloud.text(), /NoCloud API is off/);

    // The upload that was in flight is answered.
    await conn.write(body.subarray(100));
    const answer = new Uint8Array(8192);
    const n = await conn.read(answer);
    conn.close();
    assert.match(new TextDecoder().decode(answer.subarray(0, n ?? 0)), /^HTTP\/1\.1 201 /);
    // The new log level is in force: the upload's dnsmasq records are logged at debug.
    await waitUntil(
      server,
      "a debug line",
      () => Promise.resolve(/DEBUG dnsmasq: records of reload02/.test(server.log())),
    );

    // An invalid configuration: refused, every problem logged, the running one kept.
    await Deno.writeTextFile(
      config.file,
      original.replace("[mdserver]\n", "[mdserver]\nimds_tokens = sometimes\nec2 = perhaps\n"),
    );
    const before = server.log().length;
    server.kill("SIGHUP");
    await waitUntil(
      server,
      "the refusal",
      () => Promise.resolve(server.log().slice(before).includes("the running configuration stays")),
    );
    const refusal = server.log().slice(before);
    assert.match(refusal, /reload refused: .*\[mdserver\] imds_tokens/);
    assert.match(refusal, /reload refused: .*\[mdserver\] ec2/);
    assert.equal((await key()).status, 401, "tokens are still required");
    assert.deepEqual(await key(token), { status: 200, body: NEW_KEY });

    // Still running, with the same supervised dnsmasq.
    const health = await (await adminSocketFetch(config.adminSocket, "/health")).json();
    assert.equal(health.status, "ok");
    assert.equal(health.dnsmasq.pid, dnsmasqBefore.pid);
    const status = await server.stop();
    assert.equal(status.code, 0);
  } finally {
    for (const client of clients) client.close();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mdserver reload: the running process reads its configuration again and says so, or says why not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-reload-cli-" });
  const network = { address: "127.94.0.0", prefix: 16, gateway: "127.94.0.1" };
  const config = await writeProcessConfig(dir, "reload-cli", { network });
  const original = await Deno.readTextFile(config.file);
  const server = spawnServer(config.file);
  const reload = async () => {
    const printed: string[] = [];
    try {
      const code = await runCtl({ args: ["reload"], options: new Map() }, {
        configFile: config.file,
        print: (text) => printed.push(text),
      });
      return { code, printed: printed.join("\n") };
    } catch (error) {
      return { code: 1, printed: (error as Error).message };
    }
  };
  try {
    await waitForHealth(server, config.adminSocket);
    const registered =
      await (await adminSocketFetch(config.adminSocket, "/v1/instances", { method: "POST", body: domainXml(WEB) }))
        .json();
    const client = Deno.createHttpClient({ localAddress: registered.ipv4 });
    const key = async () =>
      await (await fetch(`${config.metadataUrl}/latest/meta-data/public-keys/0/openssh-key`, { client })).text();
    try {
      assert.equal(await key(), OLD_KEY);
      await Deno.writeTextFile(config.file, original.replace(OLD_KEY, NEW_KEY));
      const done = await reload();
      assert.equal(done.code, 0);
      assert.match(done.printed, /^reloaded .*reload-cli/);
      assert.equal(await key(), NEW_KEY, "the next request sees the new key");

      await Deno.writeTextFile(config.file, original.replace("[mdserver]\n", "[mdserver]\nimds_tokens = sometimes\n"));
      const refused = await reload();
      assert.equal(refused.code, 1);
      assert.match(refused.printed, /refused.*\[mdserver\] imds_tokens/);
      assert.equal(await key(), NEW_KEY, "the running configuration stays");
    } finally {
      client.close();
    }
    assert.equal((await server.stop()).code, 0);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
