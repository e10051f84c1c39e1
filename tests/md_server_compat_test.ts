/**
 * An md_server user's files carry over: its configuration forms and its
 * user-data templates in every form its README documents render unchanged.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../src/config/mod.ts";
import { silentLogger } from "../src/log/log.ts";
import { startService } from "../src/service/service.ts";

const FIXTURE = decodeURIComponent(new URL("./fixtures/md_server/", import.meta.url).pathname);

async function copyFixture(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-md_server-" });
  const copy = async (from: string, to: string) => {
    await Deno.mkdir(to, { recursive: true });
    for await (const entry of Deno.readDir(from)) {
      if (entry.isDirectory) await copy(join(from, entry.name), join(to, entry.name));
      else {
        const text = await Deno.readTextFile(join(from, entry.name));
        await Deno.writeTextFile(join(to, entry.name), text.replaceAll("@DIR@", dir));
      }
    }
  };
  await copy(FIXTURE, dir);
  return dir;
}

/** md_server's test domain XML form: metadata namespace declared on <metadata>. */
function mdServerDomain(name: string, uuid: string, mac: string, prefix?: string): string {
  const metadata = prefix
    ? `<metadata xmlns:mdserver="urn:md_server:domain_metadata">
    <mdserver:userdata_prefix>${prefix}</mdserver:userdata_prefix>
  </metadata>`
    : "";
  return `<domain type='kvm' id='7'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  ${metadata}
  <memory unit='KiB'>8388608</memory>
  <vcpu placement='static'>2</vcpu>
  <devices>
    <interface type='network'>
      <mac address='${mac}'/>
      <source network='mds' bridge='virbr0'/>
      <target dev='vnet19'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:cf:51:b2'/>
      <source network='mgmt' bridge='brmgmt'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>`;
}

Deno.test("md_server's configuration and templates in every documented form work unchanged", async () => {
  const dir = await copyFixture();
  const config = await loadConfig(join(dir, "mdserver.conf"));
  const kv = await Deno.openKv(":memory:");
  const service = await startService(config, { log: silentLogger, kv, dnsmasq: false });
  const base = `http://127.1.0.1:${service.metadataPort}`;
  const clients: Deno.HttpClient[] = [];
  try {
    // md_server: uploads from the listen address are local.
    const upload = async (xml: string) => {
      const response = await fetch(`${base}/instance-upload`, { method: "POST", body: xml });
      const body = await response.json();
      assert.ok(response.ok, JSON.stringify(body));
      return body.ipv4 as string;
    };
    const userData = async (ip: string) => {
      const client = Deno.createHttpClient({ localAddress: ip });
      clients.push(client);
      const response = await fetch(`${base}/2009-04-04/user-data`, { client });
      return { status: response.status, body: await response.text() };
    };

    const byName = await upload(mdServerDomain("test1", "becb25c7-b581-4ecd-b60e-a9942ad18879", "52:54:00:3a:cf:41"));
    assert.deepEqual(await userData(byName), {
      status: 200,
      body: `#cloud-config
hostname: test1
fqdn: thing-test1.example.com
password: $6$rounds=4096$salt$hashedpassword
chpasswd: { expire: False }
ssh_authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMdServerDefaultKey user@laptop
  - ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABMdServerBackupKey user@desktop
write_files:
  - path: /etc/foo
    content: "bar"
`,
    });

    const byMac = await upload(mdServerDomain("vm22", "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f", "52:54:00:00:00:22"));
    assert.deepEqual(await userData(byMac), {
      status: 200,
      body: "#cloud-config\nhostname: vm22\npassword: $6$rounds=4096$salt$hashedpassword\n",
    });

    const byPrefix = await upload(
      mdServerDomain("test2", "1c2d3e4f-5061-4728-9a3b-4c5d6e7f8091", "52:54:00:00:00:33", "testing"),
    );
    assert.deepEqual(await userData(byPrefix), {
      status: 200,
      body: "#cloud-config\nruncmd:\n  - echo chosen by userdata_prefix for test2\n",
    });

    const byDefault = await upload(
      mdServerDomain("other", "2d3e4f50-6172-4839-8a4b-5c6d7e8f9012", "52:54:00:00:00:44"),
    );
    assert.deepEqual(await userData(byDefault), {
      status: 200,
      body: `#cloud-config
hostname: other
local-hostname: other
fqdn: other.localdomain
manage_etc_hosts: true
ssh_authorized_keys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMdServerDefaultKey user@laptop
`,
    });

    // md_server 404s when the named prefix has no template, rather than falling through.
    const missing = await upload(
      mdServerDomain("test3", "3e4f5061-7283-4a4b-9c5d-6e7f80910213", "52:54:00:00:00:55", "nonexistent"),
    );
    assert.equal((await userData(missing)).status, 404);

    // md_server's meta-data answers: hostname and both keys, at its configured versions.
    const client = Deno.createHttpClient({ localAddress: byName });
    clients.push(client);
    const get = async (path: string) => await (await fetch(`${base}${path}`, { client })).text();
    assert.equal(await get("/2009-04-04/meta-data/hostname"), "thing-test1.example.com");
    assert.equal(await get("/latest/meta-data/public-keys/"), "0=default\n1=backup");
    assert.equal(await get("/service/location"), "testing_123");
  } finally {
    for (const client of clients) client.close();
    await service.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
