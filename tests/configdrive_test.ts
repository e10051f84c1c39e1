/**
 * Config drives built by the service itself: a domain that names
 * `[configdrive] dir`/<its uuid>.iso as a CD-ROM gets the image when the
 * hook uploads it (before the upload is answered), with the OpenStack and
 * CloudStack layouts; a password set through the admin API reaches the
 * image once and the user-data as a hash for good; cloud-init's
 * ConfigDrive datasource (22.4.2 and the current 25.x) reads the image as a
 * guest would at boot. Images are bounded, rebuilt atomically, never
 * written for another domain's file, and removed with the domain.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestService, type TestDomain, type TestService, writeClientConfig } from "./_harness.ts";
import { runCtl } from "../src/cli/ctl.ts";
import { runPassword } from "../src/cli/password.ts";
import { extractSeedImage, seedImageMissing } from "./_seed_image.ts";
import { cloudInitClients, runDriver } from "./_cloudinit.ts";
import { configDriveDiskXml, ConfigDriveImages, configDriveQemuArgs } from "../src/seed/mod.ts";
import { loadConfig } from "../src/config/mod.ts";
import { createTemplateRenderer } from "../src/guest_api/mod.ts";
import { silentLogger } from "../src/log/log.ts";

const missing = await seedImageMissing();
const NETWORK = { address: "127.106.0.0", prefix: 16, gateway: "127.106.0.1" };
const WEB = { name: "web01", uuid: "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", mac: "52:54:00:60:60:01" };
const DB = { name: "db01", uuid: "8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a", mac: "52:54:00:60:60:02" };

/** A template that sets the guest's password from its hash, as a template wanting chpasswd does. */
const TEMPLATE = `#cloud-config
hostname: {{hostname}}
chpasswd:
  expire: false
  users:
    - name: debian
      password: "{{mdserver_password_hash}}"
      type: hash
`;

/** The domain with a CD-ROM naming `file` (default: its own image, as `configDriveDiskXml` prints it). */
function withDrive(t: TestService, domain: typeof WEB, file?: string): TestDomain {
  const disk = file === undefined
    ? configDriveDiskXml(t.config, domain.uuid)
    : `<disk type='file' device='cdrom'><source file='${file}'/><target dev='sdb' bus='sata'/><readonly/></disk>`;
  return { ...domain, devices: disk };
}

/** Uploads as the hook does (admin API), returns the JSON answer and the warning header. */
async function hookUpload(t: TestService, domain: TestDomain) {
  const { domainXml } = await import("./_harness.ts");
  const response = await t.adminFetch("/v1/instances", {
    method: "POST",
    body: domainXml(domain),
    headers: { "content-type": "application/xml" },
  });
  const body = await response.json();
  assert.ok(response.ok, JSON.stringify(body));
  return { body, warning: response.headers.get("x-mdserver-warning") };
}

/** The image's files, and its volume id as "(volume id)". */
async function extract(iso: string, dir: string): Promise<Map<string, string>> {
  const files = await extractSeedImage(iso, dir);
  const output = await new Deno.Command("xorriso", {
    args: ["-indev", iso, "-pvd_info"],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  files.set("(volume id)", /Volume Id\s*:\s*(\S+)/.exec(new TextDecoder().decode(output.stdout))?.[1] ?? "");
  return files;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test({
  name: "an upload builds the domain's config drive before it is answered: both layouts, label config-2, mode 0640",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK, userdata: { "web01.yaml": TEMPLATE }, configDrives: true });
    try {
      const iso = join(t.config.configDrive.dir, `${WEB.uuid}.iso`);
      const { body, warning } = await hookUpload(t, withDrive(t, WEB));
      assert.equal(body.config_drive, "built");
      assert.equal(warning, null);
      assert.equal((await Deno.stat(iso)).mode! & 0o777, 0o640);
      const files = await extract(iso, join(t.dir, "x1"));
      assert.equal(files.get("(volume id)"), "config-2");
      assert.deepEqual([...files.keys()].filter((path) => path.startsWith("cloudstack/")).sort(), [
        "cloudstack/metadata/availability-zone.txt",
        "cloudstack/metadata/cloud-identifier.txt",
        "cloudstack/metadata/instance-id.txt",
        "cloudstack/metadata/local-hostname.txt",
        "cloudstack/metadata/public-keys.txt",
        "cloudstack/metadata/service-offering.txt",
        "cloudstack/metadata/vm-id.txt",
        "cloudstack/userdata/user_data.txt",
      ]);
      assert.equal(files.get("cloudstack/metadata/local-hostname.txt"), "web01");
      assert.equal(files.get("cloudstack/metadata/instance-id.txt"), WEB.uuid);
      assert.equal(files.get("cloudstack/metadata/availability-zone.txt"), "testzone");
      assert.match(files.get("cloudstack/metadata/public-keys.txt")!, /^ssh-ed25519 \S+ test@default\nssh-rsa /);
      // The same bytes as the OpenStack API serves (underscores kept as underscores).
      const api = await (await t.guestFetch(body.ipv4, "/openstack/latest/user_data")).text();
      assert.equal(files.get("openstack/latest/user_data"), api);
      assert.equal(files.get("cloudstack/userdata/user_data.txt"), api);
      for (const name of ["meta_data.json", "network_data.json", "vendor_data.json"]) {
        assert.ok(files.has(`openstack/latest/${name}`), name);
      }
      // Nothing half-written is left beside it.
      assert.deepEqual([...Deno.readDirSync(t.config.configDrive.dir)].map((entry) => entry.name), [`${WEB.uuid}.iso`]);
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "a password set by the admin API reaches the image until a start delivers it, and user-data as a hash for good",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK, userdata: { "web01.yaml": TEMPLATE }, configDrives: true });
    try {
      const iso = join(t.config.configDrive.dir, `${WEB.uuid}.iso`);
      await hookUpload(t, withDrive(t, WEB));
      const set = await (await t.adminFetch("/v1/instances/web01/password", { method: "POST" })).json();
      assert.match(set.password, /^[a-km-zA-HJ-NP-Z2-9]{20}$/);
      assert.equal(set.config_drive, "built");
      const files = await extract(iso, join(t.dir, "x1"));
      assert.equal(files.get("cloudstack/password/vm_password.txt"), set.password);
      assert.equal(JSON.parse(files.get("openstack/latest/meta_data.json")!).admin_pass, set.password);
      assert.match(
        files.get("openstack/latest/user_data")!,
        new RegExp(`password: "${set.hash.replaceAll("$", "\\$")}"`),
      );
      // Set while the domain is stopped (or runs on its old image): it waits for the next start.
      const shown = await (await t.adminFetch("/v1/instances/web01")).json();
      assert.equal(shown.password.pending, true);
      assert.doesNotMatch(JSON.stringify(shown), new RegExp(`${set.password}|\\$6\\$`));
      // The start: its image has the password, which is then delivered; the record keeps the hash only.
      await hookUpload(t, withDrive(t, WEB));
      const started = await extract(iso, join(t.dir, "x-start"));
      assert.equal(started.get("cloudstack/password/vm_password.txt"), set.password);
      assert.equal((await (await t.adminFetch("/v1/instances/web01")).json()).password.pending, false);
      // The start after: a fresh image, the hash still in user-data, the clear text gone for good.
      await hookUpload(t, withDrive(t, WEB));
      const next = await extract(iso, join(t.dir, "x2"));
      assert.equal(next.get("cloudstack/password/vm_password.txt"), undefined);
      assert.equal(JSON.parse(next.get("openstack/latest/meta_data.json")!).admin_pass, undefined);
      assert.equal(next.get("openstack/latest/user_data"), files.get("openstack/latest/user_data"));
      // A given password; the guest's OpenStack password route hands it over once when no image took it.
      const given = await t.adminFetch("/v1/instances/db01/password", {
        method: "POST",
        body: JSON.stringify({ password: "given one" }),
      });
      assert.equal(given.status, 404, "db01 is not known yet");
      await given.body?.cancel();
      const db = await hookUpload(t, DB);
      await (await t.adminFetch("/v1/instances/db01/password", {
        method: "POST",
        body: JSON.stringify({ password: "given one" }),
      })).body?.cancel();
      const first = await t.guestFetch(db.body.ipv4, "/openstack/latest/password");
      assert.equal(await first.text(), "given one");
      const again = await t.guestFetch(db.body.ipv4, "/openstack/latest/password");
      assert.equal(await again.text(), "", "delivered: only the hash is kept");
      const refused = await t.adminFetch("/v1/instances/db01/password", {
        method: "POST",
        body: JSON.stringify({ password: "two\nlines" }),
      });
      assert.equal(refused.status, 400);
      await refused.body?.cancel();
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name:
    "images are written only for the domain's own file, bounded in number, replaced by rename and removed on delete",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK, ini: "[configdrive]\nmax_images = 1\n", configDrives: true });
    try {
      const dir = t.config.configDrive.dir;
      const web = join(dir, `${WEB.uuid}.iso`);
      await hookUpload(t, withDrive(t, WEB));
      const before = (await Deno.stat(web)).ino;
      await hookUpload(t, withDrive(t, WEB));
      assert.notEqual((await Deno.stat(web)).ino, before, "a rebuild replaces the file by rename");
      // db01 names web01's image: nothing is written for it, web01's image is untouched.
      const hostile = await hookUpload(t, withDrive(t, DB, web));
      assert.equal(hostile.body.config_drive, "none");
      const files = await extract(web, join(t.dir, "x1"));
      assert.equal(files.get("cloudstack/metadata/local-hostname.txt"), "web01");
      // db01's own file: over max_images, so the upload succeeds, fails open, and says why.
      const over = await hookUpload(t, withDrive(t, DB));
      assert.equal(over.body.config_drive, "failed");
      assert.match(over.warning ?? "", /max_images = 1/);
      assert.equal(await exists(join(dir, `${DB.uuid}.iso`)), false);
      // The CD-ROM taken out of the domain: its image goes at the next upload; deleting removes the rest.
      assert.equal((await hookUpload(t, WEB)).body.config_drive, "removed");
      await hookUpload(t, withDrive(t, WEB));
      const deleted = await t.adminFetch("/v1/instances/web01", { method: "DELETE" });
      assert.equal(deleted.status, 200);
      await deleted.body?.cancel();
      assert.equal(await exists(web), false);
    } finally {
      await t.close();
    }
  },
});

for (const { client, missing: clientMissing } of await cloudInitClients("DataSourceConfigDrive")) {
  Deno.test({
    name:
      `${client.label}'s ConfigDrive datasource reads the image the upload built: host name, keys, user-data, password`,
    ignore: missing !== null || clientMissing !== null,
    async fn() {
      const t = await startTestService({ network: NETWORK, userdata: { "web01.yaml": TEMPLATE }, configDrives: true });
      try {
        await hookUpload(t, withDrive(t, WEB));
        const set = await (await t.adminFetch("/v1/instances/web01/password", { method: "POST" })).json();
        const dir = join(t.dir, "mounted");
        await extract(join(t.config.configDrive.dir, `${WEB.uuid}.iso`), dir);
        const { result } = await runDriver(client, "configdrive.py", [dir, set.password]);
        assert.equal(result.get_data, true);
        assert.equal(result.instance_id, WEB.uuid);
        assert.equal(result.local_hostname, "web01");
        assert.deepEqual(result.public_keys, [
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyDefault test@default",
          "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABTestKeyBackup test@backup",
        ]);
        assert.match(result.user_data, /^#cloud-config\nhostname: web01\n/);
        assert.deepEqual(result.password_hashes, [set.hash]);
        assert.deepEqual(result.hashes_match_password, [true], "the C library's crypt(3) accepts the password");
        assert.equal(result.vm_password, set.password);
        assert.equal(result.admin_pass, set.password);
        assert.equal(result.cloudstack_local_hostname, "web01");
        assert.equal(result.cloudstack_user_data, result.user_data);
      } finally {
        await t.close();
      }
    },
  });
}

Deno.test({
  name: "a reload rebuilds images with the new template, a stop keeps a pending password and drops a delivered one",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK, userdata: { "web01.yaml": TEMPLATE }, configDrives: true });
    try {
      const dir = t.config.configDrive.dir;
      const iso = join(dir, `${WEB.uuid}.iso`);
      await hookUpload(t, withDrive(t, WEB));
      await Deno.writeTextFile(join(t.dir, "userdata", "web01.yaml"), "#cloud-config\nhostname: edited\n");
      t.service.reload(await loadConfig(join(t.dir, "mdserver.conf")));
      let userData = "";
      for (let attempt = 0; attempt < 50 && !userData.includes("edited"); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        userData = (await extract(iso, join(t.dir, `reload-${attempt}`))).get("openstack/latest/user_data") ?? "";
      }
      assert.equal(userData, "#cloud-config\nhostname: edited\n");

      // Delivered at a start: once the domain stops, the rebuilt image no longer holds it.
      await (await t.adminFetch("/v1/instances/web01/password", { method: "POST" })).body?.cancel();
      await (await t.adminFetch("/v1/instances/web01/stopped", { method: "POST" })).body?.cancel();
      assert.ok((await extract(iso, join(t.dir, "pending"))).has("cloudstack/password/vm_password.txt"));
      await hookUpload(t, withDrive(t, WEB));
      assert.ok((await extract(iso, join(t.dir, "running"))).has("cloudstack/password/vm_password.txt"));
      await (await t.adminFetch("/v1/instances/web01/stopped", { method: "POST" })).body?.cancel();
      assert.ok(!(await extract(iso, join(t.dir, "stopped"))).has("cloudstack/password/vm_password.txt"));

      // Left by a domain deleted while the service was down, and by a crash mid-write.
      const orphan = join(dir, "0f0f0f0f-0000-4000-8000-000000000000.iso");
      await Deno.writeTextFile(orphan, "old");
      await Deno.mkdir(join(dir, ".partial-crashed"));
      const keeper = new ConfigDriveImages({
        store: t.service.store,
        log: silentLogger,
        documents: () => ({
          config: t.config,
          renderer: createTemplateRenderer(t.config, silentLogger),
          log: silentLogger,
        }),
      });
      assert.equal(await keeper.sweep(), 2);
      assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), [`${WEB.uuid}.iso`]);
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "mdserver password prints a generated password once, sets one from stdin, and configdrive prints the <disk>",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK, userdata: { "web01.yaml": TEMPLATE }, configDrives: true });
    try {
      const configFile = await writeClientConfig(t);
      const lines: string[] = [];
      const deps = { configFile, print: (line: string) => lines.push(line) };
      assert.equal(await runCtl({ args: ["configdrive", WEB.uuid.toUpperCase()], options: new Map() }, deps), 0);
      assert.equal(lines.slice(1).join("\n"), configDriveDiskXml(t.config, WEB.uuid));
      assert.match(lines[1]!, /^<disk type='file' device='cdrom'>/);
      assert.deepEqual(configDriveQemuArgs(t.config, WEB.uuid), [
        "-drive",
        `file=${t.config.configDrive.dir}/${WEB.uuid}.iso,format=raw,media=cdrom,readonly=on,if=ide,index=2`,
      ]);
      lines.length = 0;
      await hookUpload(t, withDrive(t, WEB));
      assert.equal(await runCtl({ args: ["password", "web01"], options: new Map() }, deps), 0);
      const [generated] = lines;
      assert.match(generated!, /^[a-km-zA-HJ-NP-Z2-9]{20}$/);
      const iso = join(t.config.configDrive.dir, `${WEB.uuid}.iso`);
      assert.equal((await extract(iso, join(t.dir, "x1"))).get("cloudstack/password/vm_password.txt"), generated);
      lines.length = 0;
      const stdin = ReadableStream.from([new TextEncoder().encode("typed secret\nignored\n")]);
      assert.equal(
        await runPassword({ args: ["password", "web01"], options: new Map([["stdin", true]]) }, {
          ...deps,
          stdin,
        }),
        0,
      );
      assert.deepEqual(lines, ["password of web01 set; its config drive was rebuilt"]);
      assert.equal((await extract(iso, join(t.dir, "x2"))).get("cloudstack/password/vm_password.txt"), "typed secret");
      lines.length = 0;
      assert.equal(await runCtl({ args: ["show", "web01"], options: new Map() }, deps), 0);
      assert.doesNotMatch(lines.join("\n"), /typed secret|\$6\$/);
      assert.match(lines.join("\n"), /config-drive\s+yes\npassword\s+set \S+, not yet delivered/);
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "uploads of new domains at the same moment do not pass max_images together",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK, ini: "[configdrive]\nmax_images = 1\n", configDrives: true });
    try {
      const answers = await Promise.all([hookUpload(t, withDrive(t, WEB)), hookUpload(t, withDrive(t, DB))]);
      assert.deepEqual(answers.map((answer) => answer.body.config_drive).sort(), ["built", "failed"]);
      assert.equal([...Deno.readDirSync(t.config.configDrive.dir)].length, 1);
    } finally {
      await t.close();
    }
  },
});
