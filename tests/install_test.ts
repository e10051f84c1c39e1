import assert from "node:assert/strict";
import { join } from "node:path";
import { UNITS } from "../src/cli/install.ts";
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
    // Port 80 and nothing else: DHCP's capabilities are dnsmasq's unit's.
    assert.match(unit, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    assert.match(unit, /^After=.*\blibvirtd\.service\b.*\bvirtnetworkd\.service\b/m);
    assert.doesNotMatch(unit, /-A\b|--allow-all/);
    const command = join(root, "usr/local/bin/mdserver");
    assert.ok(((await Deno.stat(command)).mode ?? 0) & 0o100, "the mdserver command is not executable");
    assert.match(await Deno.readTextFile(command), new RegExp(`^app='${PROJECT}'$`, "m"));

    // dnsmasq's own unit and the pair that restarts it when mdserver asks.
    const dnsmasq = await Deno.readTextFile(join(root, "etc/systemd/system/mdserver-dnsmasq.service"));
    assert.match(dnsmasq, /^ExecStart=\/usr\/sbin\/dnsmasq .*--conf-file=\/var\/lib\/mdserver\/dnsmasq\/mds\.conf$/m);
    assert.match(dnsmasq, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW$/m);
    const path = await Deno.readTextFile(join(root, "etc/systemd/system/mdserver-dnsmasq-restart.path"));
    assert.match(path, /^PathChanged=\/run\/mdserver\/dnsmasq\.restart$/m);
    assert.ok(await Deno.stat(join(root, "etc/systemd/system/mdserver-dnsmasq-restart.service")));
    // Enabled: the service, and the .path unit that starts dnsmasq's unit.
    for (const name of ["mdserver.service", "mdserver-dnsmasq-restart.path"]) {
      const link = join(root, "etc/systemd/system/multi-user.target.wants", name);
      assert.ok((await Deno.lstat(link)).isSymlink, `${name} is not enabled`);
    }

    // The admin TCP token: 0600, kept on a second install.
    const tokenFile = join(root, "etc/mdserver/admin.token");
    const token = await Deno.readTextFile(tokenFile);
    assert.match(token, /^[0-9a-f]{64}\n$/);
    assert.equal((await Deno.stat(tokenFile)).mode! & 0o777, 0o600);

    const hook = join(root, "etc/libvirt/hooks/qemu");
    assert.ok(((await Deno.stat(hook)).mode ?? 0) & 0o100, "hook is not executable");

    // A second install keeps the edited configuration.
    await Deno.writeTextFile(join(root, "etc/mdserver/mdserver.conf"), "[mdserver]\nport = 8080\n");
    const second = await runInstall(root);
    assert.equal(second.code, 0, second.err);
    assert.match(second.out, /kept: .*mdserver\.conf \(exists\)/);
    assert.equal(await Deno.readTextFile(join(root, "etc/mdserver/mdserver.conf")), "[mdserver]\nport = 8080\n");
    assert.equal(await Deno.readTextFile(tokenFile), token);
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

/** Runs systemd-analyze; its exit code and everything it printed. */
async function systemdAnalyze(args: string[]): Promise<{ code: number; messages: string }> {
  const output = await new Deno.Command("systemd-analyze", { args, stdout: "piped", stderr: "piped" }).output();
  const messages = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
  return { code: output.code, messages };
}

Deno.test({
  name: "the installed units pass systemd-analyze verify",
  ignore: analyze !== null,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
    try {
      assert.equal((await runInstall(root)).code, 0);
      const units = UNITS.map((name) => join(root, "etc/systemd/system", name));
      const { code, messages } = await systemdAnalyze(["verify", ...units]);
      assert.equal(code, 0, messages);
      assert.doesNotMatch(messages, /mdserver/, messages);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "systemd-analyze security rates mdserver.service and mdserver-dnsmasq.service under 2.0 exposure",
  ignore: analyze !== null,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
    try {
      assert.equal((await runInstall(root)).code, 0);
      const scores: Record<string, number> = {};
      for (const name of ["mdserver.service", "mdserver-dnsmasq.service", "mdserver-dnsmasq-restart.service"]) {
        const unit = join(root, "etc/systemd/system", name);
        const { messages } = await systemdAnalyze(["security", "--offline=yes", "--no-pager", unit]);
        const score = /Overall exposure level for \S+: (\d+\.\d)/.exec(messages);
        assert.ok(score, messages);
        scores[name] = Number(score[1]);
      }
      for (const [name, score] of Object.entries(scores)) {
        assert.ok(score < 2.0, `${name}: exposure ${score} (all: ${JSON.stringify(scores)})`);
      }
      const unit = await Deno.readTextFile(join(root, "etc/systemd/system/mdserver.service"));
      for (
        const line of [
          "SystemCallFilter=@system-service",
          "ProtectProc=invisible",
          "PrivateMounts=yes",
          "RemoveIPC=yes",
          "DevicePolicy=closed",
          "IPAddressDeny=any",
          "IPAddressAllow=localhost 10.122.0.0/16 169.254.169.254",
          "Environment=NO_COLOR=1",
        ]
      ) assert.ok(unit.split("\n").includes(line), `mdserver.service lacks ${line}`);
      assert.match(unit, /^# MemoryDenyWriteExecute=yes cannot be on: V8/m);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
