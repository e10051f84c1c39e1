/**
 * Seed images: `main.ts seed-iso` (run as the operator runs it, with its
 * permission set, against the KV file a running service holds) writes a
 * labelled ISO whose files are what the HTTP APIs serve, and Debian's
 * cloud-init reads the extracted image as a guest would at boot.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { loadConfig } from "../src/config/mod.ts";
import type { Instance } from "../src/store/instance.ts";
import { silentLogger } from "../src/log/log.ts";
import { networkConfigV2 } from "../src/guest_api/metadata/network_config.ts";
import { findIsoTool, type IsoTool, writeIsoImage } from "../src/seed/seed_iso.ts";
import { openKv, startService } from "../src/service/service.ts";
import { cloudInitClients, type CloudInitVersion, runDriver } from "./_cloudinit.ts";
import { domainXml } from "./_harness.ts";
import { requireTool } from "./_requirements.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const missing = await requireTool("genisoimage, xorriso, isoinfo and blkid", [
  "/usr/bin/genisoimage",
  "/usr/bin/xorriso",
  "/usr/bin/isoinfo",
  "/usr/sbin/blkid",
]);
const clients = await cloudInitClients("DataSourceConfigDrive");

const WEB = { name: "web01", uuid: "4d5e6f70-8192-4a3b-8c4d-5e6f708192a3", mac: "52:54:00:40:40:01" };
const USER_DATA = "#cloud-config\nhostname: {{hostname}}\nruncmd:\n  - echo {{instance_id}}\n";
const VENDOR_DATA = "#cloud-config\nbootcmd:\n  - echo vendor-<%= it.name %>\n";
const KEYS = [
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeySeed test@seed",
];

function configText(dir: string): string {
  return `[mdserver]
listen_address = 127.0.0.1
port = 0
userdata_dir = ${join(dir, "userdata")}
kv_file = ${join(dir, "mdserver.kv")}
vendordata_template = ${join(dir, "vendor.yaml")}

[admin]
socket = run/admin.sock

[public-keys]
seed = ${KEYS[0]}

[dnsmasq]
net_address = 127.104.0.0
net_prefix = 16
gateway = 127.104.0.1
use_dns = yes
interface = lo
base_dir = ${join(dir, "dnsmasq")}
run_dir = ${join(dir, "run")}
domain = test.internal

[service]
location = testzone
`;
}

async function run(command: string, args: string[], options: { cwd?: string } = {}) {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped", ...options }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `${command} ${args.join(" ")}: ${stderr}`);
  return stdout;
}

/** Extracts an image with xorriso (Rock Ridge names), returning path → text. */
async function extract(iso: string, dir: string): Promise<Map<string, string>> {
  await run("xorriso", ["-osirrox", "on", "-indev", iso, "-extract", "/", dir]);
  // Rock Ridge from -r makes everything read-only; let the cleanup remove it.
  await run("chmod", ["-R", "u+w", dir]);
  const files = new Map<string, string>();
  const walk = async (sub: string) => {
    for await (const entry of Deno.readDir(join(dir, sub))) {
      const path = sub === "" ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else files.set(path, await Deno.readTextFile(join(dir, path)));
    }
  };
  await walk("");
  return files;
}

interface Fixture {
  dir: string;
  configFile: string;
  ip: string;
  guestGet(path: string): Promise<string>;
}

async function withSeedService(body: (fixture: Fixture) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-seed-test-" });
  await Deno.mkdir(join(dir, "userdata"));
  await Deno.writeTextFile(join(dir, "userdata", "web01.yaml"), USER_DATA);
  await Deno.writeTextFile(join(dir, "vendor.yaml"), VENDOR_DATA);
  const configFile = join(dir, "mdserver.conf");
  await Deno.writeTextFile(configFile, configText(dir));
  const config = await loadConfig(configFile);
  // A KV file, as in production: seed-iso opens it beside the running service.
  const kv = await openKv(config);
  const service = await startService(config, { log: silentLogger, kv });
  const base = `http://127.0.0.1:${service.metadataPort}`;
  const client = { current: null as Deno.HttpClient | null };
  try {
    const uploaded = await fetch(`${base}/instance-upload`, { method: "POST", body: domainXml(WEB) });
    const ip = (await uploaded.json()).ipv4 as string;
    client.current = Deno.createHttpClient({ localAddress: ip });
    const guestGet = async (path: string) => {
      const response = await fetch(`${base}${path}`, { client: client.current! });
      const text = await response.text();
      assert.equal(response.status, 200, `${path}: ${text}`);
      return text;
    };
    await body({ dir, configFile, ip, guestGet });
  } finally {
    client.current?.close();
    await service.shutdown();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function seedIsoCli(fixture: Fixture, format: string): Promise<string> {
  const iso = join(fixture.dir, `${format}.iso`);
  const stdout = await run(Deno.execPath(), [
    "run",
    "-P=seed-iso",
    "main.ts",
    "seed-iso",
    "web01",
    "--format",
    format,
    "-o",
    iso,
    "--config",
    fixture.configFile,
  ], { cwd: ROOT });
  assert.match(stdout, new RegExp(`^wrote ${iso}: .* image for web01 \\(${fixture.ip.replaceAll(".", "\\.")}\\)`));
  return iso;
}

async function label(iso: string): Promise<string> {
  return (await run("blkid", ["-o", "value", "-s", "LABEL", iso])).trim();
}

async function readDriver(client: CloudInitVersion, kind: string, dir: string) {
  return (await runDriver(client, "seed.py", [kind, dir, WEB.mac])).result;
}

for (const { client, missing: clientMissing } of clients) {
  Deno.test({
    name:
      `${client.label} reads the config-2 image seed-iso --format configdrive writes, which holds what /openstack/latest serves`,
    ignore: missing !== null || clientMissing !== null,
    async fn() {
      await withSeedService(async (fixture) => {
        const iso = await seedIsoCli(fixture, "configdrive");
        assert.equal(await label(iso), "config-2");
        const info = await run("isoinfo", ["-d", "-i", iso]);
        assert.match(info, /Volume id: config-2/);
        assert.match(info, /Rock Ridge signatures/);
        assert.match(info, /Joliet/);

        const files = await extract(iso, join(fixture.dir, "configdrive"));
        assert.deepEqual([...files.keys()].sort(), [
          "cloudstack/metadata/availability-zone.txt",
          "cloudstack/metadata/cloud-identifier.txt",
          "cloudstack/metadata/instance-id.txt",
          "cloudstack/metadata/local-hostname.txt",
          "cloudstack/metadata/public-keys.txt",
          "cloudstack/metadata/service-offering.txt",
          "cloudstack/metadata/vm-id.txt",
          "cloudstack/userdata/user_data.txt",
          "ec2/latest/meta-data.json",
          "openstack/latest/meta_data.json",
          "openstack/latest/network_data.json",
          "openstack/latest/user_data",
          "openstack/latest/vendor_data.json",
          "openstack/latest/vendor_data2.json",
        ]);
        for (
          const name of ["meta_data.json", "network_data.json", "user_data", "vendor_data.json", "vendor_data2.json"]
        ) {
          assert.equal(
            files.get(`openstack/latest/${name}`),
            await fixture.guestGet(`/openstack/latest/${name}`),
            name,
          );
        }

        const result = await readDriver(client, "configdrive", join(fixture.dir, "configdrive"));
        assert.equal(result.version, 2);
        assert.equal(result.instance_id, WEB.uuid);
        assert.equal(result.local_hostname, "web01.test.internal");
        assert.deepEqual(result.public_keys, { seed: KEYS[0] });
        assert.equal(
          result.user_data,
          "#cloud-config\nhostname: web01\nruncmd:\n  - echo i-4d5e6f7081924a3b8c4d5e6f708192a3\n",
        );
        assert.deepEqual(result.vendor_data, { "cloud-init": "#cloud-config\nbootcmd:\n  - echo vendor-web01\n" });
        assert.deepEqual(result.vendor_data2, {});
        assert.equal(result.ec2_instance_id, "i-4d5e6f7081924a3b8c4d5e6f708192a3");
        assert.deepEqual(result.network_state.interfaces, [{
          name: "ens3",
          mac_address: WEB.mac,
          subnets: [{
            type: "static",
            address: fixture.ip,
            netmask: "255.255.0.0",
            prefix: 16,
            ipv4: true,
            routes: [{ network: "0.0.0.0", netmask: "0.0.0.0", prefix: 0, gateway: "127.104.0.1" }],
          }],
        }]);
        assert.deepEqual(result.network_state.dns, ["127.104.0.1"]);
      });
    },
  });

  Deno.test({
    name:
      `${client.label} reads the cidata image seed-iso --format nocloud writes, with /nocloud/'s files and a static network-config`,
    ignore: missing !== null || clientMissing !== null,
    async fn() {
      await withSeedService(async (fixture) => {
        const iso = await seedIsoCli(fixture, "nocloud");
        assert.equal(await label(iso), "cidata");
        const files = await extract(iso, join(fixture.dir, "nocloud"));
        assert.deepEqual([...files.keys()].sort(), ["meta-data", "network-config", "user-data", "vendor-data"]);
        for (const name of ["meta-data", "user-data", "vendor-data"]) {
          assert.equal(files.get(name), await fixture.guestGet(`/nocloud/${name}`), name);
        }
        const config = await loadConfig(fixture.configFile);
        assert.deepEqual(
          parse(files.get("network-config")!),
          networkConfigV2(config, { mac: WEB.mac, ipv4: fixture.ip } as Instance, "static"),
        );

        const result = await readDriver(client, "nocloud", join(fixture.dir, "nocloud"));
        assert.equal(result.get_data, true);
        assert.match(result.seed, /\/seed\/nocloud$/);
        assert.equal(result.instance_id, "i-4d5e6f7081924a3b8c4d5e6f708192a3");
        assert.equal(result.local_hostname, "web01");
        assert.deepEqual(result.public_keys, KEYS);
        assert.equal(
          result.user_data,
          "#cloud-config\nhostname: web01\nruncmd:\n  - echo i-4d5e6f7081924a3b8c4d5e6f708192a3\n",
        );
        assert.equal(result.vendor_data, "#cloud-config\nbootcmd:\n  - echo vendor-web01\n");
        const [iface] = result.network_state.interfaces;
        assert.equal(iface.name, "ens3");
        assert.equal(iface.mac_address, WEB.mac);
        assert.equal(iface.subnets[0].type, "static");
        assert.equal(iface.subnets[0].address, fixture.ip);
        assert.equal(iface.subnets[0].prefix, 16);
        assert.deepEqual(iface.subnets[0].dns_nameservers, ["127.104.0.1"]);
        assert.deepEqual(
          iface.subnets[0].routes.map((route: Record<string, unknown>) => [route.network, route.prefix, route.gateway]),
          [["0.0.0.0", 0, "127.104.0.1"]],
        );
      });
    },
  });
}

Deno.test({
  name: "writeIsoImage() makes the same image with xorriso, keeping case and underscores",
  ignore: missing !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mdserver-seed-test-" });
    try {
      const files = new Map([
        ["openstack/latest/meta_data.json", '{"uuid": "x"}\n'],
        ["openstack/latest/user_data", "#cloud-config\n"],
        ["Mixed_Case-name.txt", "kept\n"],
      ]);
      for (const tool of ["xorriso", "genisoimage"] as IsoTool[]) {
        const iso = join(dir, `${tool}.iso`);
        assert.equal(await writeIsoImage(files, { label: "config-2", output: iso, tools: [tool] }), tool);
        assert.equal(await label(iso), "config-2");
        assert.match(await run("isoinfo", ["-d", "-i", iso]), /Joliet/);
        const extracted = await extract(iso, join(dir, tool));
        assert.deepEqual(new Map([...extracted].sort()), new Map([...files].sort()), tool);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("findIsoTool() says what to install when no tool is there", async () => {
  await assert.rejects(
    () => findIsoTool(["mdserver-no-such-mkisofs" as IsoTool]),
    /none of mdserver-no-such-mkisofs is installed \(apt-get install genisoimage, or xorriso\)/,
  );
});

Deno.test({
  name: "seed-iso names an unknown instance and a missing store clearly",
  ignore: missing !== null,
  async fn() {
    await withSeedService(async (fixture) => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-P=seed-iso", "main.ts", "seed-iso", "nosuch", "--format", "nocloud", "-o", "/tmp/x.iso"]
          .concat(["--config", fixture.configFile]),
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(output.code, 1);
      assert.match(new TextDecoder().decode(output.stderr), /no instance "nosuch" in ".*mdserver\.kv"/);
      const usage = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-P=seed-iso", "main.ts", "seed-iso", "web01", "--format", "iso", "-o", "/tmp/x.iso"],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(usage.code, 2);
      assert.match(new TextDecoder().decode(usage.stderr), /--format configdrive or --format nocloud/);
    });
  },
});
