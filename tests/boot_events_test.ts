/**
 * cloud-init's own reporting code reports boots to a real mdserver: the
 * boothook in the data a guest reads adds cloud-init's webhook reporter to
 * the runtime configuration, which that version's configuration loading
 * takes (and a later boot's init-local, with only the cached instance
 * cloud-config, does not: nothing there can fail); the reporter
 * (cloudinit.reporting, 22.4.2 and 25.x), whose WebHookHandler posts every
 * stage and module event to the metadata listener; each boot then moves
 * registered → metadata fetched → user-data fetched → each stage → done or
 * failed (with the module), a reboot from inside the guest opens a new boot,
 * a restart of the service loses nothing, and events from a stranger or
 * over the limits are not kept.
 */
import assert from "node:assert/strict";
import { cloudInitClients, type CloudInitVersion, runDriver } from "./_cloudinit.ts";
import { startTestService, type TestService } from "./_harness.ts";
import { silentLogger } from "../src/log/log.ts";
import { openKv, startService } from "../src/service/service.ts";

const clients = await cloudInitClients("DataSourceNoCloud");

const NETWORK = { address: "127.108.0.0", prefix: 16, gateway: "127.108.0.1" };
const WEB = { name: "web01", uuid: "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b", mac: "52:54:00:61:61:01" };
const ALL_STAGES = "init-network,modules-config,modules-final";

interface BootJson {
  seq: number;
  cause: string;
  state: string;
  metadata_at: string | null;
  user_data_at: string | null;
  stages: Record<string, { started_at: string; finished_at: string | null; result: string | null }>;
  problem: { stage: string; module: string; result: string; message: string } | null;
  events: number;
  dropped: number;
}

async function boots(t: TestService, name: string): Promise<BootJson[]> {
  const response = await t.adminFetch(`/v1/instances/${name}/boots`);
  assert.equal(response.status, 200);
  return (await response.json()).boots;
}

/**
 * Runs the stages as the guest at `ip` with the client's reporter; asserts it logged no warning, that the
 * hook the guest got wrote the reporter into the runtime configuration once (kept after ds-identify's line),
 * that this version's configuration loading takes it from there, and that a later boot's init-local, with
 * only the cached instance cloud-config, has no reporter to fail with.
 */
async function playBoot(client: CloudInitVersion, metadataUrl: string, ip: string, stages: string, fail?: string) {
  const args = [`${metadataUrl}/nocloud/`, ip, stages, ...(fail ? [fail] : [])];
  const { result } = await runDriver(client, "boot_events.py", args);
  assert.deepEqual(result.warnings, [], `${client.label} logged warnings while reporting`);
  assert.ok(result.hooks >= 1, "the guest's user-data or vendor-data carries the boot-events hook");
  const runtime: string = result.runtime_config;
  assert.ok(runtime.startsWith("datasource_list: [ NoCloud, None ]\n\n# mdserver boot events\nreporting:\n"), runtime);
  assert.equal(runtime.match(/^reporting:/gm)?.length, 1, "the hook ran twice, the entry is there once");
  const endpoint = `${metadataUrl}/boot-events`;
  assert.deepEqual(result.reporting, { mdserver: { type: "webhook", endpoint, timeout: 2, retries: 0 } });
  assert.deepEqual(result.handlers.mdserver, { class: "WebHookHandler", endpoint });
  assert.ok(Object.keys(result.cached_instance_config).length > 0, "the instance has cached cloud-config");
  assert.ok(!JSON.stringify(result.cached_instance_config).includes("reporting"), "no reporter in the cache");
  assert.equal(result.later_boot_reporting, null, "a later boot's init-local configures no reporting");
  assert.deepEqual(Object.keys(result.later_boot_handlers), ["logging"], "only cloud-init's own log handler");
  // The guest's own reporting: wins, key by key (mdserver: null turns mdserver's off, others join).
  assert.deepEqual(result.own_reporting, { mdserver: null, mine: { type: "log" } });
  return result.posted as { name: string; event_type: string; result?: string }[];
}

for (const { client, missing } of clients) {
  Deno.test({
    name:
      `${client.label}: its webhook reporter takes a boot to done, a failing module to failed, a reboot opens a boot`,
    ignore: missing !== null,
    async fn() {
      const t = await startTestService({ network: NETWORK });
      try {
        const { ipv4 } = await t.register(WEB);
        let [boot] = await boots(t, WEB.name);
        assert.equal(boot!.state, "registered");
        assert.equal(boot!.cause, "start");

        // The guest's crawl: meta-data, then user-data (the driver reads vendor-data the same way).
        assert.equal((await t.guestFetch(ipv4, "/nocloud/meta-data")).status, 200);
        await t.service.boots.flush();
        assert.equal((await boots(t, WEB.name))[0]!.state, "metadata fetched");
        const posted = await playBoot(client, t.metadataUrl, ipv4, ALL_STAGES);
        await t.service.boots.flush();
        [boot] = await boots(t, WEB.name);
        assert.equal(boot!.state, "done", JSON.stringify(boot));
        assert.ok(boot!.user_data_at !== null, "the driver's seed read is the user-data fetch");
        assert.deepEqual(Object.keys(boot!.stages), ["init-network", "modules-config", "modules-final"]);
        for (const stage of Object.values(boot!.stages)) assert.equal(stage.result, "SUCCESS");
        assert.equal(boot!.problem, null);
        // Every event the reporter posted was taken; a stage's own start never is (reporting is set up inside it).
        assert.equal(boot!.events, posted.length);
        assert.equal(posted.filter((event) => event.name === "init-network").length, 1);
        assert.equal(boot!.dropped, 0);

        // The guest reboots from inside (no start): its events open a new boot, and a failing module fails it.
        await playBoot(client, t.metadataUrl, ipv4, ALL_STAGES, "runcmd");
        const after = await boots(t, WEB.name);
        assert.deepEqual(after.map((b) => [b.seq, b.cause, b.state]), [[2, "guest reboot", "failed"], [
          1,
          "start",
          "done",
        ]]);
        assert.deepEqual(
          { ...after[0]!.problem, at: undefined },
          {
            stage: "modules-config",
            module: "config-runcmd",
            result: "FAIL",
            message: "running config-runcmd with frequency once-per-instance",
            at: undefined,
          },
        );
        assert.equal(after[0]!.stages["modules-final"]!.result, "SUCCESS");

        // A late repeat of the last stage changes nothing.
        await playBoot(client, t.metadataUrl, ipv4, "modules-final");
        assert.equal((await boots(t, WEB.name)).length, 2);

        // The operator's view: show (the instance) and the list carry the boot.
        const shown = await (await t.adminFetch(`/v1/instances/${WEB.name}`)).json();
        assert.equal(shown.boot.state, "failed");
        assert.equal(shown.boots.length, 2);
        const listed = await (await t.adminFetch("/v1/boots")).json();
        assert.equal(listed.instances[0].boot.problem.module, "config-runcmd");

        // A start (the hook's upload) opens a boot that again reaches its end: the 18.3 case.
        await t.register(WEB);
        assert.equal((await boots(t, WEB.name))[0]!.state, "registered");
        await playBoot(client, t.metadataUrl, ipv4, ALL_STAGES);
        const third = await boots(t, WEB.name);
        assert.deepEqual(third.map((b) => b.state), ["done", "failed", "done"]);

        const metrics = await (await t.adminFetch("/metrics")).text();
        assert.match(metrics, /^mdserver_boots_total\{outcome="done"\} 2$/m);
        assert.match(metrics, /^mdserver_boots_total\{outcome="failed"\} 1$/m);
        assert.match(metrics, /^mdserver_boots_total\{outcome="degraded"\} 0$/m);
        assert.match(metrics, /^mdserver_boot_events_total\{fate="taken"\} [1-9]\d*$/m);
        assert.match(metrics, /^mdserver_boot_duration_seconds_count\{outcome="done"\} 2$/m);
        // Both starts were followed by a metadata fetch; the reboot (no start) is not counted.
        assert.match(metrics, /^mdserver_boot_first_fetch_seconds_count 2$/m);
      } finally {
        await t.close();
      }
    },
  });

  Deno.test({
    name: `${client.label}: a boot half reported before a service restart reaches done after it`,
    ignore: missing !== null,
    async fn() {
      const t = await startTestService({ network: NETWORK, kvFile: true });
      let second: Awaited<ReturnType<typeof startService>> | null = null;
      const kv = await openKv(t.config);
      try {
        const { ipv4 } = await t.register(WEB);
        await playBoot(client, t.metadataUrl, ipv4, "init-network,modules-config");
        await t.service.shutdown();
        second = await startService(t.config, { log: silentLogger, kv, dnsmasq: false });
        await playBoot(client, `http://127.0.0.1:${second.metadataPort}`, ipv4, "modules-final");
        const [boot] = await second.boots.get(WEB.uuid);
        assert.equal(boot!.phase, "done");
        assert.equal(boot!.seq, 1);
      } finally {
        await second?.shutdown();
        kv.close();
        await t.close();
      }
    },
  });
}

Deno.test("boot events: a stranger is refused, a body over max_event_size is 413, events over the per-boot count are dropped", async () => {
  const t = await startTestService({
    network: NETWORK,
    ini: "[events]\nmax_event_size = 512\nmax_events_per_boot = 10\n",
  });
  try {
    const { ipv4 } = await t.register(WEB);
    const event = (name: string) =>
      JSON.stringify({ name, description: "x", event_type: "start", origin: "cloudinit", timestamp: 1 });
    const post = (from: string, body: string) => t.guestFetch(from, "/boot-events", { method: "POST", body });
    const stranger = await post("127.108.9.9", event("init-network/config-ssh"));
    assert.equal(stranger.status, 404);
    await stranger.body?.cancel();
    const large = await post(ipv4, event(`init-network/${"x".repeat(600)}`));
    assert.equal(large.status, 413);
    await large.body?.cancel();
    const bad = await post(ipv4, "{}");
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const statuses = [];
    for (let i = 0; i < 12; i++) {
      const answer = await post(ipv4, event(`init-network/config-m${i}`));
      statuses.push(answer.status);
      await answer.body?.cancel();
    }
    assert.deepEqual(statuses, [...Array(10).fill(204), 202, 202]);
    const [boot] = await t.service.boots.get(WEB.uuid);
    assert.equal(boot!.events, 10);
    assert.equal(boot!.dropped, 2);
  } finally {
    await t.close();
  }
});
