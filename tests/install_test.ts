import assert from "node:assert/strict";
import { join } from "node:path";
import { requireTool } from "./_requirements.ts";

const PROJECT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

async function runInstall(root: string, ...extra: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=test", "main.ts", "install", "--root", root, ...extra],
    cwd: PROJECT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    out: new TextDecoder().decode(output.stdout),
    err: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("install --root places config, unit, network XML and hook, and keeps an operator's config", async () => {
  const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
  try {
    const first = await runInstall(root);
    assert.equal(first.code, 0, first.err);
    const conf = await Deno.readTextFile(join(root, "etc/mdserver/mdserver.conf"));
    assert.equal(conf, await Deno.readTextFile(join(PROJECT, "config/mdserver.conf")));
    assert.ok((await Deno.stat(join(root, "etc/mdserver/userdata/base.yaml"))).isFile);
    assert.match(await Deno.readTextFile(join(root, "etc/mdserver/mds-network.xml")), /<name>mds<\/name>/);

    const unit = await Deno.readTextFile(join(root, "etc/systemd/system/mdserver.service"));
    assert.doesNotMatch(unit, /@DENO@|@APP@/);
    assert.ok(
      unit.includes(
        `ExecStart=${Deno.execPath()} run --quiet --no-prompt --cached-only --frozen -P=serve --config ${PROJECT}/deno.json`,
      ),
    );
    assert.match(unit, /^ProtectSystem=strict$/m);
    assert.match(unit, /^NoNewPrivileges=yes$/m);
    assert.match(unit, /^ReadWritePaths=\/var\/lib\/mdserver \/run\/mdserver$/m);
    assert.match(unit, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW$/m);
    assert.doesNotMatch(unit, /-A\b|--allow-all/);
    const command = join(root, "usr/local/bin/mdserver");
    assert.ok(((await Deno.stat(command)).mode ?? 0) & 0o100, "the mdserver command is not executable");
    assert.match(await Deno.readTextFile(command), new RegExp(`^app='${PROJECT}'$`, "m"));

    const hook = join(root, "etc/libvirt/hooks/qemu");
    assert.ok(((await Deno.stat(hook)).mode ?? 0) & 0o100, "hook is not executable");

    // A second install keeps the edited configuration.
    await Deno.writeTextFile(join(root, "etc/mdserver/mdserver.conf"), "[mdserver]\nport = 8080\n");
    const second = await runInstall(root);
    assert.equal(second.code, 0, second.err);
    assert.match(second.out, /kept: .*mdserver\.conf \(exists\)/);
    assert.equal(await Deno.readTextFile(join(root, "etc/mdserver/mdserver.conf")), "[mdserver]\nport = 8080\n");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("install --root refuses to overwrite a hook it did not write", async () => {
  const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
  try {
    await Deno.mkdir(join(root, "etc/libvirt/hooks"), { recursive: true });
    await Deno.writeTextFile(join(root, "etc/libvirt/hooks/qemu"), "#!/bin/sh\necho mine\n");
    const result = await runInstall(root);
    assert.notEqual(result.code, 0);
    assert.equal(await Deno.readTextFile(join(root, "etc/libvirt/hooks/qemu")), "#!/bin/sh\necho mine\n");
    await assert.rejects(() => Deno.stat(join(root, "etc/mdserver")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const analyze = await requireTool("systemd-analyze (Debian systemd)", ["/usr/bin/systemd-analyze"]);

Deno.test({
  name: "the installed unit passes systemd-analyze verify",
  ignore: analyze !== null,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
    try {
      assert.equal((await runInstall(root)).code, 0);
      const output = await new Deno.Command("systemd-analyze", {
        args: ["verify", join(root, "etc/systemd/system/mdserver.service")],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const messages = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
      assert.equal(output.code, 0, messages);
      assert.doesNotMatch(messages, /mdserver\.service/, messages);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
