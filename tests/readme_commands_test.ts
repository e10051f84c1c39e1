/**
 * The README's command lines, run as an operator runs them: through
 * bin/mdserver (the command install puts on the PATH) or `deno task`, each
 * under its own permission set, with temporary paths; each checks its
 * effect and that nothing but the command's own output is printed (no Deno
 * warning, no colour codes).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { wrapperScript } from "../src/cli/wrapper.ts";

const PROJECT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

async function mdserver(args: string[], options: { task?: boolean; cwd?: string } = {}) {
  const command = options.task
    ? new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", ...args],
      cwd: PROJECT,
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command("sh", {
      args: [join(PROJECT, "bin/mdserver"), ...args],
      cwd: options.cwd ?? PROJECT,
      env: { DENO: Deno.execPath() },
      stdout: "piped",
      stderr: "piped",
    });
  const output = await command.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, out: decode(output.stdout), err: decode(output.stderr) };
}

/** A folder under the git-ignored .data/ (the import set's data folder), removed after. */
async function dataDir(): Promise<string> {
  await Deno.mkdir(join(PROJECT, ".data"), { recursive: true });
  return await Deno.makeTempDir({ dir: join(PROJECT, ".data"), prefix: "readme-" });
}

Deno.test("README: mdserver help and mdserver check-config print only their output, exit 0", async () => {
  const help = await mdserver(["help"]);
  assert.deepEqual([help.code, help.err], [0, ""]);
  assert.match(help.out, /^usage: mdserver <command>/);
  const check = await mdserver(["check-config", "config/dev.conf"]);
  assert.deepEqual([check.code, check.err], [0, ""]);
  assert.match(check.out, /^# files read: .*config\/dev\.conf$/m);
  assert.ok(!(check.out + check.err).includes("\u001b["), "colour codes in the output");
});

Deno.test("README: mdserver smbios prints the <sysinfo> under the ctl set, with no warning about virsh", async () => {
  const smbios = await mdserver(["smbios", "web01", "--config", "config/dev.conf"]);
  assert.deepEqual([smbios.code, smbios.err], [0, ""]);
  assert.match(smbios.out, /<sysinfo type='smbios'>/);
});

Deno.test("README: a usage error is exit 2 with one error line and the usage", async () => {
  const result = await mdserver(["list", "--jsn", "--config", "config/dev.conf"]);
  assert.equal(result.code, 2);
  assert.equal(
    result.err,
    'mdserver: error: list has no option "--jsn"; did you mean "--json"?\n' +
      "usage: mdserver list [options] (mdserver help list)\n",
  );
});

Deno.test("README: mdserver install --root DIR writes the files and the mdserver command there", async () => {
  const root = await Deno.makeTempDir({ prefix: "mdserver-readme-root-" });
  try {
    const result = await mdserver(["install", "--root", root]);
    assert.equal(result.code, 0, result.err);
    assert.equal(result.err, "");
    for (
      const path of ["etc/mdserver/mdserver.conf", "etc/systemd/system/mdserver.service", "etc/libvirt/hooks/qemu"]
    ) {
      assert.ok((await Deno.stat(join(root, path))).isFile, path);
    }
    const command = join(root, "usr/local/bin/mdserver");
    const help = await new Deno.Command("sh", { args: [command, "help", "list"], stdout: "piped", stderr: "piped" })
      .output();
    assert.equal(help.code, 0, new TextDecoder().decode(help.stderr));
    assert.match(new TextDecoder().decode(help.stdout), /^usage: mdserver list/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("README: mdserver install-hook --path P writes the hook at P", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-readme-hook-" });
  try {
    const result = await mdserver(["install-hook", "--path", join(dir, "hooks/qemu")]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /hooks\/qemu/);
    assert.ok(((await Deno.stat(join(dir, "hooks/qemu"))).mode ?? 0) & 0o100);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const task of [false, true]) {
  Deno.test(`README: ${task ? "deno task import-md-server" : "mdserver import-md-server"} with a non-default config`, async () => {
    const dir = await dataDir();
    try {
      await Deno.mkdir(join(dir, "userdata"));
      const conf = join(dir, "mdserver.conf");
      await Deno.writeTextFile(
        conf,
        "[mdserver]\nuserdata_dir = userdata\nkv_file = mdserver.kv\n[dnsmasq]\nnet_prefix = 16\n",
      );
      const db = join(dir, "db.json");
      await Deno.writeTextFile(
        db,
        JSON.stringify([{
          domain_name: "web01",
          domain_uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
          mds_mac: "52:54:00:12:34:56",
          mds_ipv4: "10.122.0.7",
        }]),
      );
      const result = await mdserver(
        task ? ["import-md-server", db, "--config", conf] : ["import-md-server", db, "--config", conf],
        { task },
      );
      assert.equal(result.code, 0, result.err);
      assert.equal(result.err, "");
      assert.match(result.out, /^imported\tweb01\t10\.122\.0\.7\t/m);
      assert.match(result.out, /1 of 1 entries imported/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("bin/mdserver is the wrapper generated from the command table", async () => {
  const expected = wrapperScript({ app: `"$(cd "$(dirname "$0")/.." && pwd)"`, deno: `"\${DENO:-deno}"` });
  assert.equal(await Deno.readTextFile(join(PROJECT, "bin/mdserver")), expected);
});

Deno.test("README: the test tools' apt-get install line is the package list .ci/run installs", async () => {
  const ciRun = await Deno.readTextFile(join(PROJECT, ".ci/run"));
  const ciPackages = /^packages=\(([^)]*)\)$/m.exec(ciRun)?.[1]?.split(/\s+/).filter(Boolean);
  assert.ok(ciPackages && ciPackages.length > 0, ".ci/run has no packages=(…) line");
  const readme = await Deno.readTextFile(join(PROJECT, "README.md"));
  const install = /\(`apt-get install ([^`]*)`,\s+the list\s+`\.ci\/run` installs/.exec(readme)?.[1];
  assert.ok(install, "the README's 'Running the tests' has no apt-get install line naming .ci/run");
  assert.deepEqual(install.split(/\s+/).filter(Boolean).sort(), [...ciPackages].sort());
});
