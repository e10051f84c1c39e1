/**
 * Answers prepared ahead are never stale: each input an answer is made from
 * — the instance record (re-upload, delete), a template file (added,
 * changed, removed), the configuration by reload (a public key, template
 * data, the token mode) — is changed in turn, and the very next answer is
 * the new one. Each step also checks that the answers were being served
 * from what was prepared before the change (`mdserver_answers_ahead`
 * counts them), so the change is seen by the kept answers, not only by
 * the handler behind them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { requireEtcd, startEtcdCluster } from "./_etcd_cluster.ts";
import { startTestService, type TestService } from "./_harness.ts";

const GUEST = { name: "ahead01", uuid: "0000000c-0000-4000-8000-000000000001", mac: "52:54:00:0c:00:01" };
const NEW_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAheadReloadedKey test@ahead";
/** Longer than the renderer's settle time: a template file this old is served from the kept answer. */
const SETTLE_WAIT_MS = 2_300;

/** Requests answered from prepared answers so far. */
async function servedAhead(t: TestService): Promise<number> {
  const text = await (await t.adminFetch("/metrics")).text();
  const match = /^mdserver_answers_ahead\{kind="served"\} (\d+)$/m.exec(text);
  assert.ok(match, "mdserver_answers_ahead is among the metrics");
  return Number(match[1]);
}

Deno.test("answers ahead: every change to what an answer is made from shows in the very next answer", async () => {
  const t = await startTestService({ ini: "[template-data]\ngreeting = hello\n" });
  try {
    const guest = await t.register(GUEST);
    const read = async (path: string, headers: Record<string, string> = {}) => {
      const response = await t.guestFetch(guest.ipv4, path, { headers });
      return { status: response.status, body: await response.text() };
    };
    /** Reads `path` twice more and asserts both answers, the second from what was prepared. */
    const servedFromPrepared = async (path: string, expected: string) => {
      assert.equal((await read(path)).body, expected);
      const before = await servedAhead(t);
      assert.equal((await read(path)).body, expected);
      assert.equal(await servedAhead(t), before + 1, `${path} is answered from what was prepared`);
    };

    // The record: a re-upload under another name changes the hostname at once.
    await servedFromPrepared("/latest/meta-data/hostname", "ahead01.test.internal");
    await t.register({ ...GUEST, name: "ahead02" });
    assert.equal((await read("/latest/meta-data/hostname")).body, "ahead02.test.internal");
    await servedFromPrepared("/latest/meta-data/hostname", "ahead02.test.internal");

    // Templates: the built-in one, then a template file added for the guest, changed, removed.
    // The folder was made just now: its changes settle first.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_WAIT_MS));
    const builtin = (await read("/latest/user-data")).body;
    await servedFromPrepared("/latest/user-data", builtin);
    const template = join(t.dir, "userdata", "ahead02");
    const steps: [string, (() => Promise<void>), string][] = [
      [
        "added",
        () => Deno.writeTextFile(template, "#cloud-config\nhostname: <%= name %>\n"),
        "#cloud-config\nhostname: ahead02\n",
      ],
      [
        "changed (same size)",
        () => Deno.writeTextFile(template, "#cloud-config\nhostnamX: <%= name %>\n"),
        "#cloud-config\nhostnamX: ahead02\n",
      ],
      [
        "changed",
        () => Deno.writeTextFile(template, "#cloud-config\nfqdn: <%= greeting %>.<%= name %>\n"),
        "#cloud-config\nfqdn: hello.ahead02\n",
      ],
      ["removed", () => Deno.remove(template), builtin],
    ];
    for (const [what, change, expected] of steps) {
      await change();
      assert.equal((await read("/latest/user-data")).body, expected, `template ${what}: the very next answer`);
      // Once the change has settled, the answer kept before it is not served either.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_WAIT_MS));
      assert.equal((await read("/latest/user-data")).body, expected, `template ${what}: once settled`);
      await servedFromPrepared("/latest/user-data", expected);
    }

    // A reload: another public key and other template data, at once.
    await Deno.writeTextFile(template, "#cloud-config\nfqdn: <%= greeting %>.<%= name %>\n");
    await new Promise((resolve) => setTimeout(resolve, SETTLE_WAIT_MS));
    await servedFromPrepared("/latest/user-data", "#cloud-config\nfqdn: hello.ahead02\n");
    const keyPath = "/latest/meta-data/public-keys/0/openssh-key";
    const oldKey = (await read(keyPath)).body;
    await servedFromPrepared(keyPath, oldKey);
    const file = join(t.dir, "mdserver.conf");
    const original = await Deno.readTextFile(file);
    const reloaded = original.replace(/^default = .*$/m, `default = ${NEW_KEY}`).replace(
      "greeting = hello",
      "greeting = hi",
    );
    await Deno.writeTextFile(file, reloaded);
    t.service.reload(await loadConfig(file));
    assert.equal((await read(keyPath)).body, NEW_KEY);
    assert.equal((await read("/latest/user-data")).body, "#cloud-config\nfqdn: hi.ahead02\n");
    await servedFromPrepared(keyPath, NEW_KEY);

    // The token mode: required by reload, a request without one is refused at once; with one, answered.
    await Deno.writeTextFile(file, reloaded.replace("[mdserver]\n", "[mdserver]\nimds_tokens = required\n"));
    t.service.reload(await loadConfig(file));
    assert.equal((await read(keyPath)).status, 401);
    const token = await (await t.guestFetch(guest.ipv4, "/latest/api/token", {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
    })).text();
    assert.deepEqual(await read(keyPath, { "x-aws-ec2-metadata-token": token }), { status: 200, body: NEW_KEY });
    const before = await servedAhead(t);
    assert.deepEqual(await read(keyPath, { "x-aws-ec2-metadata-token": token }), { status: 200, body: NEW_KEY });
    assert.equal(await servedAhead(t), before + 1, "a token seen valid is answered from what was prepared");
    assert.equal((await read(keyPath, { "x-aws-ec2-metadata-token": `${token.slice(0, -2)}xx` })).status, 401);
    assert.equal((await read(keyPath)).status, 401);

    // A delete: the guest is a stranger at once.
    const deleted = await t.adminFetch(`/v1/instances/${GUEST.uuid}`, { method: "DELETE" });
    await deleted.body?.cancel();
    assert.equal(deleted.ok, true);
    assert.equal((await read(keyPath, { "x-aws-ec2-metadata-token": token })).status, 404);
  } finally {
    await t.close();
  }
});

/** A gauge of mdserver_answers_ahead by kind. */
async function aheadGauge(t: TestService, kind: string): Promise<number> {
  const text = await (await t.adminFetch("/metrics")).text();
  return Number(new RegExp(`^mdserver_answers_ahead\\{kind="${kind}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
}

/** Registers GUEST once the fresh userdata folder has settled, and waits until its upload has prepared it. */
async function registerPrepared(t: TestService) {
  // The folder was made just now: its changes settle first (a template this new is not kept).
  await new Promise((resolve) => setTimeout(resolve, SETTLE_WAIT_MS));
  const guest = await t.register(GUEST);
  const deadline = Date.now() + 5_000;
  while (!(await aheadGauge(t, "uploads") >= 1)) {
    assert.ok(Date.now() < deadline, "the upload's guest was prepared within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return guest;
}

Deno.test("answers ahead: a start's upload prepares the guest's answers before it asks, and notes no fetch", async () => {
  const t = await startTestService();
  try {
    const guest = await registerPrepared(t);
    const state = async () => (await (await t.adminFetch(`/v1/instances/${GUEST.uuid}`)).json()).boot_state;
    assert.equal(await state(), "registered", "preparing ahead is not a fetch");

    // cloud-init's first requests: the token, then every GET answered from what the upload prepared.
    const token = await (await t.guestFetch(guest.ipv4, "/latest/api/token", {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
    })).text();
    const read = async (path: string) => {
      const before = await servedAhead(t);
      const response = await t.guestFetch(guest.ipv4, path, { headers: { "x-aws-ec2-metadata-token": token } });
      const body = await response.text();
      return { status: response.status, body, prepared: await servedAhead(t) === before + 1 };
    };
    assert.deepEqual(await read("/latest/meta-data/instance-id"), {
      status: 200,
      body: guest.instance_id,
      prepared: true,
    });
    const userData = await read("/latest/user-data");
    assert.deepEqual([userData.status, userData.prepared], [200, true]);
    assert.match(userData.body, /^hostname: "ahead01"$/m);
    assert.equal(await state(), "user_data_fetched");

    // A template that appears after the upload and before the guest asks again: its very next answer.
    await t.register(GUEST);
    await Deno.writeTextFile(join(t.dir, "userdata", GUEST.name), "#cloud-config\nhostname: <%= name %>-late\n");
    assert.equal((await read("/latest/user-data")).body, "#cloud-config\nhostname: ahead01-late\n");
  } finally {
    await t.close();
  }
});

Deno.test("answers ahead: a guest that boots after the address cache's time to live is still answered from what its upload prepared", async () => {
  const ttlMs = 300;
  const t = await startTestService({ addressCacheTtlMs: ttlMs });
  try {
    const guest = await registerPrepared(t);
    // The guest boots later than the cache trusts its record: its token request reads the record again.
    await new Promise((resolve) => setTimeout(resolve, ttlMs + 200));
    const token = await (await t.guestFetch(guest.ipv4, "/latest/api/token", {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
    })).text();
    for (const path of ["/latest/meta-data/instance-id", "/latest/user-data"]) {
      const before = await servedAhead(t);
      const response = await t.guestFetch(guest.ipv4, path, { headers: { "x-aws-ec2-metadata-token": token } });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.equal(await servedAhead(t), before + 1, `${path}: answered from what the upload prepared`);
    }
    // A record changed meanwhile (a re-upload under another name) is never answered from the old one.
    await t.register({ ...GUEST, name: "ahead09" });
    await new Promise((resolve) => setTimeout(resolve, ttlMs + 200));
    const hostname = await t.guestFetch(guest.ipv4, "/latest/meta-data/hostname", {
      headers: { "x-aws-ec2-metadata-token": token },
    });
    assert.equal(await hostname.text(), "ahead09.test.internal");
  } finally {
    await t.close();
  }
});

Deno.test("answers ahead on etcd: served from the watch-fed copy, and another host's change shows once it is seen", async () => {
  const missing = await requireEtcd();
  if (missing) return;
  const cluster = await startEtcdCluster(3);
  const ini =
    `[store]\nbackend = etcd\nendpoints = ${cluster.endpoints.join(",")}\nprefix = /ahead-${crypto.randomUUID()}/\n` +
    "timeout = 1000\n";
  const hosts: TestService[] = [];
  try {
    hosts.push(await startTestService({ ini: `${ini}[service]\nhostname = host-a\n` }));
    hosts.push(await startTestService({ ini: `${ini}[service]\nhostname = host-b\n` }));
    const [a, b] = hosts as [TestService, TestService];
    await new Promise((resolve) => setTimeout(resolve, SETTLE_WAIT_MS));
    const guest = await a.register(GUEST);
    const hostname = async () => (await (await a.guestFetch(guest.ipv4, "/latest/meta-data/hostname")).text());
    assert.equal(await hostname(), "ahead01.test.internal");
    const before = await servedAhead(a);
    assert.equal(await hostname(), "ahead01.test.internal");
    assert.equal(await servedAhead(a), before + 1, "answered from what was prepared, on etcd too");

    // Another host re-uploads it under another name: host A answers the new name once its watch has the change.
    await b.register({ ...GUEST, name: "ahead07" });
    const deadline = Date.now() + 5_000;
    while (await hostname() !== "ahead07.test.internal") {
      assert.ok(Date.now() < deadline, "host A's answer follows host B's change within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    for (const host of hosts) await host.close();
    await cluster.stop();
  }
});
