import assert from "node:assert/strict";
import { join } from "node:path";
import { schema } from "../config/schema.ts";
import {
  chownConfigDrive,
  DEFAULT_CONFIG_DRIVE_DIR,
  DEFAULT_QEMU_CONF,
  domainUuid,
  readOwnerSettings,
} from "./config_drive_owner.ts";
import { missingRequirement, requirementTest } from "../../tests/_netns.ts";

const UUID = "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";
const NOBODY = { uid: 65534, gid: 65534, label: "nobody:nogroup" };

/** Only root can give a file to another user, as the hook runs. */
const reason = await missingRequirement({ root: true });

Deno.test("the hook's defaults are the service's, and its permission set covers them", async () => {
  const configdrive = schema("host").configdrive as Record<string, string>;
  assert.equal(configdrive.dir, DEFAULT_CONFIG_DRIVE_DIR);
  assert.equal(configdrive.qemu_conf, DEFAULT_QEMU_CONF);
  const hook = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url))).permissions.hook;
  for (const path of [DEFAULT_QEMU_CONF, "/etc/passwd", "/etc/group", DEFAULT_CONFIG_DRIVE_DIR]) {
    assert.ok(hook.read.includes(path), `read ${path}`);
  }
  assert.ok(hook.write.includes(DEFAULT_CONFIG_DRIVE_DIR));
});

Deno.test("readOwnerSettings() reads [configdrive] from the file and its includes, paths relative to their file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-owner-" });
  try {
    await Deno.mkdir(join(dir, "conf.d"));
    await Deno.writeTextFile(join(dir, "main.conf"), "[configdrive]\ndir = seeds\n[_include_]\ndirectories = conf.d\n");
    await Deno.writeTextFile(join(dir, "conf.d", "10-qemu.conf"), "[configdrive]\nqemu_conf = qemu.conf\n");
    assert.deepEqual(await readOwnerSettings(join(dir, "main.conf")), {
      dir: join(dir, "seeds"),
      qemuUser: "auto",
      qemuConf: join(dir, "conf.d", "qemu.conf"),
    });
    await Deno.writeTextFile(join(dir, "bare.conf"), "[configdrive]\nqemu_user = nobody:nogroup\n");
    assert.deepEqual(await readOwnerSettings(join(dir, "bare.conf")), {
      dir: DEFAULT_CONFIG_DRIVE_DIR,
      qemuUser: "nobody:nogroup",
      qemuConf: DEFAULT_QEMU_CONF,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("domainUuid() takes the domain's <uuid>, lower case", () => {
  assert.equal(domainUuid(`<domain><name>a</name><uuid>${UUID.toUpperCase()}</uuid></domain>`), UUID);
  assert.equal(domainUuid("<domain><name>a</name></domain>"), null);
});

requirementTest(
  "chownConfigDrive() refuses a FIFO, a file of another owner and a name that is no UUID, and changes nothing",
  reason,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "mdserver-owner-" });
    try {
      const path = join(dir, `${UUID}.iso`);
      const mkfifo = await new Deno.Command("mkfifo", { args: [path] }).output();
      assert.equal(mkfifo.code, 0);
      await assert.rejects(() => chownConfigDrive(dir, UUID, NOBODY), { message: `${path} is not a regular file` });
      await Deno.remove(path);
      await Deno.writeTextFile(path, "image", { mode: 0o640 });
      await Deno.chown(path, 1234, 1234);
      await assert.rejects(() => chownConfigDrive(dir, UUID, NOBODY), {
        message: `${path} is owned by uid 1234, not by its folder's owner`,
      });
      assert.equal((await Deno.lstat(path)).uid, 1234);
      await assert.rejects(() => chownConfigDrive(dir, "../etc/passwd", NOBODY), TypeError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
