/**
 * What an operator sees: boot tracking through phone-home, known_hosts,
 * rendered previews, metrics and the ctl commands over the admin API.
 */
import assert from "node:assert/strict";
import { requireTool } from "./_requirements.ts";
import { domainXml, startTestService, type TestService, writeClientConfig } from "./_harness.ts";

const WEB = { name: "web01", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", mac: "52:54:00:12:34:56" };
const ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfWeb01xxxxxxxxxxxxxxxxxxxxxxxxxxxx";

async function withService(body: (t: TestService, ip: string) => Promise<void>, options = {}) {
  const t = await startTestService(options);
  try {
    const uploaded = await (await t.upload(domainXml(WEB))).json();
    await body(t, uploaded.ipv4);
  } finally {
    await t.close();
  }
}

async function admin(t: TestService, path: string) {
  const response = await t.adminFetch(`${path}`);
  assert.equal(response.status, 200, `${path}: ${response.status}`);
  return response;
}

async function state(t: TestService) {
  await t.service.access.flush();
  return (await (await admin(t, "/v1/instances/web01")).json()).boot_state;
}

Deno.test("boot tracking follows a guest from registered to booted, and a new start begins again", async () => {
  await withService(async (t, ip) => {
    assert.equal(await state(t), "registered");
    await (await t.guestFetch(ip, "/latest/meta-data/instance-id")).text();
    assert.equal(await state(t), "metadata_fetched");
    await (await t.guestFetch(ip, "/latest/user-data")).text();
    assert.equal(await state(t), "user_data_fetched");

    const form = new URLSearchParams({
      instance_id: "i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b",
      hostname: "web01",
      fqdn: "web01.test.internal",
      pub_key_ed25519: `${ED25519} root@web01`,
      pub_key_rsa: "not a key",
    });
    const phoned = await t.guestFetch(ip, "/phone-home", { method: "POST", body: form });
    assert.equal(phoned.status, 200, await phoned.text());
    assert.equal(await state(t), "booted");
    const shown = await (await admin(t, "/v1/instances/web01")).json();
    assert.deepEqual(shown.access.host_keys, { "ssh-ed25519": ED25519 });

    const knownHosts = await (await admin(t, "/v1/known-hosts")).text();
    assert.equal(knownHosts, `web01,web01.test.internal,${ip} ${ED25519}\n`);

    // The hook uploads again on the next start: progress resets, keys stay.
    await (await t.upload(domainXml(WEB))).text();
    assert.equal(await state(t), "registered");
    assert.equal(await (await admin(t, "/v1/known-hosts")).text(), knownHosts);
  });
});

Deno.test("phone-home from another guest's address or with another instance-id changes nothing", async () => {
  await withService(async (t, ip) => {
    const stranger = await t.guestFetch("127.77.200.200", "/phone-home", {
      method: "POST",
      body: new URLSearchParams({ pub_key_ed25519: ED25519 }),
    });
    assert.equal(stranger.status, 404);
    await stranger.body?.cancel();
    const wrong = await t.guestFetch(ip, "/phone-home", {
      method: "POST",
      body: new URLSearchParams({ instance_id: "i-00000000000000000", pub_key_ed25519: ED25519 }),
    });
    assert.equal(wrong.status, 409);
    await wrong.body?.cancel();
    assert.notEqual(await state(t), "booted");
  });
});

Deno.test("phone-home with the OpenStack family's instance-id (the UUID, as a config drive gives it) records the boot, and is no fetch", async () => {
  await withService(async (t, ip) => {
    const phoned = await t.guestFetch(ip, "/phone-home", {
      method: "POST",
      body: new URLSearchParams({ instance_id: WEB.uuid, hostname: "web01", pub_key_ed25519: `${ED25519} root@web01` }),
    });
    assert.equal(phoned.status, 200, await phoned.text());
    await t.service.access.flush();
    const shown = await (await admin(t, "/v1/instances/web01")).json();
    assert.deepEqual(shown.access.host_keys, { "ssh-ed25519": ED25519 });
    assert.equal(shown.access.first_metadata_at, null, "a guest that only phoned home fetched nothing");
    assert.equal(shown.boot.metadata_at, null);
  });
});

Deno.test("the built-in user-data asks cloud-init to phone home to this service", async () => {
  await withService(async (t, ip) => {
    const body = await (await t.guestFetch(ip, "/latest/user-data")).text();
    assert.match(body, new RegExp(`url: "?${t.metadataUrl}/phone-home"?`));
    assert.match(body, /pub_key_ed25519/);
  });
});

Deno.test("the admin API previews user-data and meta-data exactly as the guest receives them", async () => {
  await withService(async (t, ip) => {
    const guest = await (await t.guestFetch(ip, "/latest/user-data")).text();
    assert.equal(await (await admin(t, "/v1/instances/web01/user-data")).text(), guest);
    const metaData = await (await admin(t, `/v1/instances/${ip}/meta-data`)).json();
    assert.equal(metaData["instance-id"], "i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b");
    assert.equal(metaData.placement["availability-zone"], "testzone");
    const nocloud = await (await admin(t, "/v1/instances/web01/nocloud/meta-data")).text();
    assert.equal(nocloud, await (await t.guestFetch(ip, "/nocloud/meta-data")).text());
  }, { userdata: { "web01": "#cloud-config\nhostname: {{hostname}}\n" } });
});

Deno.test("/metrics counts requests by API and status and reports pool and states", async () => {
  await withService(async (t, ip) => {
    await (await t.guestFetch(ip, "/latest/meta-data/")).text();
    await (await t.guestFetch(ip, "/latest/meta-data/nope")).text();
    await (await t.guestFetch(ip, "/openstack/latest/meta_data.json")).text();
    await t.service.access.flush();
    const text = await (await admin(t, "/metrics")).text();
    assert.match(text, /mdserver_requests_total\{api="ec2",status="200"\} 1/);
    assert.match(text, /mdserver_requests_total\{api="ec2",status="404"\} 1/);
    assert.match(text, /mdserver_requests_total\{api="openstack",status="200"\} 1/);
    assert.match(text, /mdserver_requests_total\{api="upload",status="201"\} 1/);
    assert.match(text, /mdserver_request_duration_seconds_count\{api="ec2"\} 2/);
    assert.match(text, /^mdserver_pool_size_addresses 65533$/m);
    assert.match(text, /^mdserver_pool_used_addresses 1$/m);
    assert.match(text, /^mdserver_instances\{state="metadata_fetched"\} 1$/m);
    assert.match(text, /^mdserver_instances\{state="registered"\} 0$/m);
    await promtoolCheck(text);
  });
});

/** `promtool check metrics` on an exposition: no error and no lint finding. */
async function promtoolCheck(text: string) {
  if (await requireTool("promtool (apt-get install prometheus)", ["/usr/bin/promtool"])) return;
  const child = new Deno.Command("/usr/bin/promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const output = await child.output();
  const said = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  assert.equal(said.trim(), "", said);
  assert.equal(output.code, 0);
}

Deno.test("/metrics has every metric from the first scrape, by Prometheus conventions (promtool check metrics)", async () => {
  await withService(async (t) => {
    const text = await (await admin(t, "/metrics")).text();
    for (
      const name of [
        "mdserver_build_info",
        "mdserver_template_errors_total",
        "mdserver_instances",
        "mdserver_pool_size_addresses",
        "mdserver_pool_used_addresses",
        "mdserver_dnsmasq_restarts_total",
        "mdserver_requests_total",
        "mdserver_request_duration_seconds",
      ]
    ) assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
    assert.match(text, /^mdserver_build_info\{version="[^"]+"\} 1$/m);
    assert.match(text, /^mdserver_template_errors_total 0$/m);
    for (const state of ["registered", "metadata_fetched", "user_data_fetched", "booted", "stopped"]) {
      assert.match(text, new RegExp(`^mdserver_instances\\{state="${state}"\\} \\d+$`, "m"), state);
    }
    for (const outcome of ["done", "degraded", "failed"]) {
      assert.match(text, new RegExp(`^mdserver_boots_total\\{outcome="${outcome}"\\} 0$`, "m"), outcome);
    }
    for (const fate of ["taken", "dropped", "stale"]) {
      assert.match(text, new RegExp(`^mdserver_boot_events_total\\{fate="${fate}"\\} 0$`, "m"), fate);
    }
    for (const [, name] of text.matchAll(/^# TYPE (\S+) counter$/gm)) assert.match(name!, /_total$/);
    await promtoolCheck(text);
  });
});

Deno.test("a template error is counted in /metrics", async () => {
  await withService(async (t, ip) => {
    assert.equal((await t.guestFetch(ip, "/latest/user-data")).status, 500);
    assert.match(await (await admin(t, "/metrics")).text(), /mdserver_template_errors_total 1/);
  }, { userdata: { "web01": "{{nope}}" } });
});

Deno.test("ctl list, show, user-data, known-hosts and delete work against the running service", async () => {
  await withService(async (t, ip) => {
    const clientConfig = await writeClientConfig(t);
    const ctl = async (...args: string[]) => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-P=test", "main.ts", "ctl", ...args, "--config", clientConfig],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: output.code,
        out: new TextDecoder().decode(output.stdout),
        err: new TextDecoder().decode(output.stderr),
      };
    };
    const list = await ctl("list");
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^NAME\s+ADDRESS\s+MAC\s+INSTANCE-ID\s+STATE\s+SINCE/);
    assert.match(
      list.out,
      new RegExp(
        `web01\\s+${
          ip.replaceAll(".", "\\.")
        }\\s+52:54:00:12:34:56\\s+i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b\\s+registered`,
      ),
    );
    const json = JSON.parse((await ctl("list", "--json")).out);
    assert.equal(json[0].name, "web01");
    const show = await ctl("show", "web01");
    assert.match(show.out, /instance-id\s+i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b/);
    const userData = await ctl("user-data", "web01");
    assert.equal(userData.out, await (await t.guestFetch(ip, "/latest/user-data")).text());
    assert.equal((await ctl("known-hosts")).out, "");
    const deleted = await ctl("delete", "web01");
    assert.equal(deleted.code, 0, deleted.err);
    assert.equal((await t.adminFetch(`/v1/instances/web01`)).status, 404);
    const missing = await ctl("show", "web01");
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /no instance "web01"/);
  });
});

Deno.test("the metadata listener never serves the admin API", async () => {
  await withService(async (t, ip) => {
    for (const path of ["/v1/instances", "/v1/known-hosts", "/metrics", "/health"]) {
      for (const response of [await fetch(`${t.metadataUrl}${path}`), await t.guestFetch(ip, path)]) {
        assert.equal(response.status, 404, path);
        await response.body?.cancel();
      }
    }
    const remove = await fetch(`${t.metadataUrl}/v1/instances/web01`, { method: "DELETE" });
    assert.equal(remove.status, 405);
    await remove.body?.cancel();
    assert.equal((await t.adminFetch(`/v1/instances/web01`).then((r) => r.json())).name, "web01");
  });
});
