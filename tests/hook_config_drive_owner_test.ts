/**
 * The hook gives the config drive the service built to the user and group
 * QEMU runs as: the real hook.ts, run as root as libvirt runs it, against a
 * real service over its admin socket, with a qemu.conf of its own naming
 * `nobody` and `nogroup`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { domainXml, startTestService, type TestService } from "./_harness.ts";
import { missingRequirement, requirementTest } from "./_netns.ts";

const PROJECT_DIR = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
/** Liveness guard only: a hook still running after this is a failure. */
const GUARD_MS = 10_000;
const NOBODY = 65534;
const NOGROUP = 65534;

const WEB01 = { name: "web01", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", mac: "52:54:00:12:34:56" };

/** A domain XML with its config drive CD-ROM. */
function withConfigDrive(test: TestService): string {
  const cdrom =
    `<disk type='file' device='cdrom'><source file='${test.config.configDrive.dir}/${WEB01.uuid}.iso'/></disk>`;
  return domainXml({ ...WEB01, devices: cdrom });
}

/** The service's configuration with its admin socket and `extra` in a conf.d file, as an operator keeps them. */
async function hookConfig(test: TestService, extra = ""): Promise<string> {
  const main = await Deno.readTextFile(join(test.dir, "mdserver.conf"));
  await Deno.mkdir(join(test.dir, "conf.d"), { recursive: true });
  await Deno.writeTextFile(join(test.dir, "conf.d", "50-hook.conf"), `[admin]\nsocket = ../run/admin.sock\n${extra}`);
  const file = join(test.dir, "hook.conf");
  await Deno.writeTextFile(file, `${main}\n[_include_]\ndirectories = conf.d\n`);
  return file;
}

/** hook.ts `prepare begin` with the `hook` permission set plus the test's folder; its exit code and stderr. */
async function prepareBegin(config: string, xml: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = config.slice(0, config.lastIndexOf("/"));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "--no-prompt",
      "-P=hook",
      // Flags replace the set's paths of their kind: the accounts files are named again.
      `--allow-read=${dir},/etc/passwd,/etc/group`,
      `--allow-write=${dir}`,
      `--allow-net=127.0.0.1,unix:${dir}/run/admin.sock`,
      "--config",
      join(PROJECT_DIR, "deno.json"),
      join(PROJECT_DIR, "hook.ts"),
      WEB01.name,
      "prepare",
      "begin",
      "-",
    ],
    env: { MDSERVER_CONFIG: config, NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), GUARD_MS);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(xml));
  await writer.close();
  const output = await child.output();
  clearTimeout(guard);
  assert.notEqual(output.signal, "SIGKILL", `the hook was still running after ${GUARD_MS} ms`);
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** The owner and mode of a file, without following a link. */
async function owner(path: string): Promise<{ uid: number | null; gid: number | null; mode: number }> {
  const stat = await Deno.lstat(path);
  return { uid: stat.uid, gid: stat.gid, mode: (stat.mode ?? 0) & 0o7777 };
}

/** Only root can chown, as libvirt's hook runs. */
const reason = await missingRequirement({ root: true });

requirementTest(
  "the hook gives the built config drive to QEMU's user and group from qemu.conf, mode 0640",
  reason,
  async () => {
    const test = await startTestService({ configDrives: true, ini: "[configdrive]\nqemu_conf = qemu.conf\n" });
    try {
      // libvirt's syntax: the commented-out default does not count, the setting does.
      await Deno.writeTextFile(
        join(test.dir, "qemu.conf"),
        '#user = "libvirt-qemu"\nuser = "nobody"\n#group = "libvirt-qemu"\ngroup = "nogroup"\n# group = "root"\n',
      );
      const run = await prepareBegin(await hookConfig(test), withConfigDrive(test));
      assert.deepEqual(run, { code: 0, stdout: "", stderr: "" });
      const image = join(test.config.configDrive.dir, `${WEB01.uuid}.iso`);
      assert.deepEqual(await owner(image), { uid: NOBODY, gid: NOGROUP, mode: 0o640 });
      // Whole: QEMU opens it next.
      const bytes = await Deno.readFile(image);
      assert.equal(new TextDecoder().decode(bytes.subarray(0x8001, 0x8006)), "CD001");
      // The folder lets QEMU's user through without listing it.
      assert.equal((await owner(test.config.configDrive.dir)).mode, 0o751);
    } finally {
      await test.close();
    }
  },
);

requirementTest(
  "the hook takes [configdrive] qemu_user = NAME with the user's primary group, and none leaves the owner",
  reason,
  async () => {
    const test = await startTestService({ configDrives: true });
    try {
      const image = join(test.config.configDrive.dir, `${WEB01.uuid}.iso`);
      const named = await prepareBegin(
        await hookConfig(test, "[configdrive]\nqemu_user = nobody\n"),
        withConfigDrive(test),
      );
      assert.deepEqual(named, { code: 0, stdout: "", stderr: "" });
      assert.deepEqual(await owner(image), { uid: NOBODY, gid: NOGROUP, mode: 0o640 });
      const none = await prepareBegin(
        await hookConfig(test, "[configdrive]\nqemu_user = none\n"),
        withConfigDrive(test),
      );
      assert.deepEqual(none, { code: 0, stdout: "", stderr: "" });
      // Rebuilt by the service (the test runs it as root) and left as it wrote it.
      assert.deepEqual(await owner(image), { uid: 0, gid: 0, mode: 0o640 });
    } finally {
      await test.close();
    }
  },
);

requirementTest(
  "the hook refuses a symbolic link or a hard link where the image should be, changes nothing and the domain starts",
  reason,
  async () => {
    const test = await startTestService({ configDrives: true });
    try {
      // The hook looks in a folder of its own configuration where a link waits: as if the service's
      // folder had been tampered with between the build and the hook's chown.
      const trap = join(test.dir, "trap");
      await Deno.mkdir(trap);
      const victim = join(test.dir, "victim");
      await Deno.writeTextFile(victim, "not QEMU's\n", { mode: 0o600 });
      const config = await hookConfig(test, "[configdrive]\ndir = ../trap\nqemu_user = nobody:nogroup\n");
      // ln: Deno.symlink needs unscoped permissions.
      const ln = await new Deno.Command("ln", { args: ["-s", victim, join(trap, `${WEB01.uuid}.iso`)] }).output();
      assert.equal(ln.code, 0);
      const symlink = await prepareBegin(config, withConfigDrive(test));
      assert.equal(symlink.code, 0);
      assert.equal(symlink.stdout, "");
      assert.equal(
        symlink.stderr,
        `mdserver-hook: web01 prepare begin: config drive owner not changed: ${trap}/${WEB01.uuid}.iso is a symbolic link\n`,
      );
      assert.deepEqual(await owner(victim), { uid: 0, gid: 0, mode: 0o600 });

      await Deno.remove(join(trap, `${WEB01.uuid}.iso`));
      await Deno.link(victim, join(trap, `${WEB01.uuid}.iso`));
      const hardlink = await prepareBegin(config, withConfigDrive(test));
      assert.equal(hardlink.code, 0);
      assert.equal(
        hardlink.stderr,
        `mdserver-hook: web01 prepare begin: config drive owner not changed: ${trap}/${WEB01.uuid}.iso has 2 links\n`,
      );
      assert.deepEqual(await owner(victim), { uid: 0, gid: 0, mode: 0o600 });
      assert.ok(await test.service.store.getByName("web01"), "the domain is registered all the same");
    } finally {
      await test.close();
    }
  },
);

requirementTest(
  "the hook fails open when QEMU's user cannot be found: one line, exit 0, the image whole as the service wrote it",
  reason,
  async () => {
    const test = await startTestService({ configDrives: true, ini: "[configdrive]\nqemu_conf = qemu.conf\n" });
    try {
      await Deno.writeTextFile(join(test.dir, "qemu.conf"), 'user = "no-such-qemu-user"\ngroup = "nogroup"\n');
      const run = await prepareBegin(await hookConfig(test), withConfigDrive(test));
      assert.equal(run.code, 0);
      assert.equal(run.stdout, "");
      assert.equal(
        run.stderr,
        'mdserver-hook: web01 prepare begin: config drive owner not changed: no user "no-such-qemu-user" in /etc/passwd\n',
      );
      const image = join(test.config.configDrive.dir, `${WEB01.uuid}.iso`);
      assert.deepEqual(await owner(image), { uid: 0, gid: 0, mode: 0o640 });
      const bytes = await Deno.readFile(image);
      assert.equal(new TextDecoder().decode(bytes.subarray(0x8001, 0x8006)), "CD001");
    } finally {
      await test.close();
    }
  },
);
