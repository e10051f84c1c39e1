/**
 * `mdserver wait` and `mdserver watch` against a real service whose guests
 * report with cloud-init's own webhook reporter (the system's 22.4.2 and
 * the current 25.x): wait exits 0 when every boot is done, 1 naming the
 * module and message of a failed one, 124 when a boot does not end in
 * time; show prints the timeline; watch piped prints one line per change;
 * the admin API's NDJSON stream carries every change.
 */
import assert from "node:assert/strict";
import { cloudInitClients, runDriver } from "./_cloudinit.ts";
import { startTestService, type TestService, writeClientConfig } from "./_harness.ts";
import { runMain } from "../src/cli/main.ts";
import { captureCli } from "./_cli_capture.ts";

const clients = await cloudInitClients("DataSourceNoCloud");
const NETWORK = { address: "127.109.0.0", prefix: 16, gateway: "127.109.0.1" };
const WEB = { name: "web01", uuid: "2c3d4e5f-6071-4829-9bac-1d2e3f4a5b6c", mac: "52:54:00:62:62:01" };
const DB = { name: "db01", uuid: "3d4e5f60-7182-493a-8cbd-2e3f4a5b6c7d", mac: "52:54:00:62:62:02" };
const IDLE = { name: "idle01", uuid: "4e5f6071-8293-4a4b-9dce-3f4a5b6c7d8e", mac: "52:54:00:62:62:03" };
const ALL = "init-network,modules-config,modules-final";

async function boot(t: TestService, ip: string, client: (typeof clients)[number]["client"], fail?: string) {
  await runDriver(client, "boot_events.py", [`${t.metadataUrl}/nocloud/`, ip, ALL, ...(fail ? [fail] : [])]);
}

for (const { client, missing } of clients) {
  Deno.test({
    name: `${client.label}: mdserver wait ends with each boot (0 done, 1 failed with its module, 124 timeout)`,
    ignore: missing !== null,
    async fn() {
      const t = await startTestService({ network: NETWORK });
      try {
        const config = await writeClientConfig(t);
        const web = (await t.register(WEB)).ipv4;
        const db = (await t.register(DB)).ipv4;
        await t.register(IDLE);

        // wait starts before the boots and returns once both have ended.
        const both = captureCli();
        const waiting = runMain(["wait", "web01", "db01", "--timeout", "60", "--config", config], both.deps);
        await Promise.all([boot(t, web, client), boot(t, db, client, "runcmd")]);
        const started = performance.now();
        assert.equal(await waiting, 1, both.err.join("\n"));
        assert.ok(performance.now() - started < 6000, "wait answers within a poll of the end");
        assert.deepEqual(both.out, [
          "db01: failed: modules-config/config-runcmd: running config-runcmd with frequency once-per-instance",
        ]);

        // show: the current boot's timeline with durations, and its problem.
        const shown = captureCli();
        assert.equal(await runMain(["show", "db01", "--config", config], shown.deps), 0);
        const text = shown.out.join("\n");
        assert.match(text, /^boot 1 +\S+Z \(start\)$/m);
        assert.match(text, /^user-data fetched +\+\d+\.\ds$/m);
        assert.match(text, /^modules-config +\+\d+\.\ds {2}\d+\.\ds FAIL$/m);
        assert.match(text, /^state +failed after \d+\.\ds$/m);
        assert.match(text, /^problem +modules-config\/config-runcmd: running config-runcmd/m);

        // list: the BOOT column.
        const listed = captureCli();
        assert.equal(await runMain(["list", "--config", config], listed.deps), 0);
        assert.match(listed.out.join("\n"), /^db01 .* failed$/m);
        assert.match(listed.out.join("\n"), /^idle01 .* registered$/m);

        const done = captureCli();
        assert.equal(await runMain(["wait", "web01", "--config", config], done.deps), 0);
        assert.deepEqual(done.out, []);

        const late = captureCli();
        const before = performance.now();
        assert.equal(await runMain(["wait", "web01", "idle01", "--timeout", "1", "--config", config], late.deps), 124);
        assert.ok(performance.now() - before < 4000);
        assert.deepEqual(late.out, ["idle01: still registered after 1s"]);

        const unknown = captureCli();
        assert.equal(await runMain(["wait", "nope", "--config", config], unknown.deps), 1);
        assert.match(unknown.err.join("\n"), /no instance "nope"/);
        assert.equal(await runMain(["wait", "--config", config], captureCli().deps), 2);
      } finally {
        await t.close();
      }
    },
  });
}

Deno.test({
  name: "mdserver watch piped prints a line per change of a boot, none for the clock",
  ignore: clients[0]!.missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK });
    try {
      const config = await writeClientConfig(t);
      const web = (await t.register(WEB)).ipv4;
      const stop = new AbortController();
      const watching = captureCli(stop.signal);
      const running = runMain(["watch", "--config", config], watching.deps);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await boot(t, web, clients[0]!.client);
      // Each change is one line; a poll that finds nothing new prints nothing.
      for (let i = 0; i < 50 && !watching.out.some((line) => / done /.test(line)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      stop.abort();
      assert.equal(await running, 0);
      const lines = watching.out.map((line) => line.replace(/^\S+ {2}/, ""));
      assert.match(lines[0]!, /^web01 {2}127\.109\.\d+\.\d+ +\[#------\] {2}registered/);
      assert.match(lines.at(-1)!, /^web01 {2}127\.109\.\d+\.\d+ +\[#######\] {2}done +\d+\.\ds$/);
      const states = lines.map((line) => line.split(/\s{2,}/)[3]);
      assert.deepEqual(states, [...new Set(states)], "no line repeats a state");
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "GET /v1/boots/stream: a line per instance, then a line per change, until the service stops",
  ignore: clients[0]!.missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK });
    try {
      const web = (await t.register(WEB)).ipv4;
      const response = await t.adminFetch("/v1/boots/stream");
      assert.equal(response.headers.get("content-type"), "application/x-ndjson");
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const booting = boot(t, web, clients[0]!.client);
      for (let i = 0; i < 500 && !text.includes('"state":"done"'); i++) text += (await reader.read()).value ?? "";
      await booting;
      const lines = text.trim().split("\n").map((line) => JSON.parse(line));
      assert.equal(lines[0].name, "web01");
      assert.equal(lines[0].boot.state, "registered");
      assert.equal(lines.at(-1).boot.state, "done");
      await t.service.shutdown();
      for (let i = 0; i < 100; i++) if ((await reader.read()).done) break;
    } finally {
      await t.close();
    }
  },
});
