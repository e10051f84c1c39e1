/**
 * The libvirt hook run as libvirt runs it: a separate process, libvirt's four
 * arguments, the domain XML on stdin, against a real mdserver on loopback.
 * Also the install command and `ctl gc` through the admin API.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runCtl } from "../src/cli/ctl.ts";
import { HookExistsError, hookPermissionFlags, installHook, WRAPPER_MARKER } from "../src/hook/install.ts";
import { HOOK_BUDGET_MS } from "../src/hook/run.ts";
import { domainXml, startTestService, type TestService, type TestServiceOptions } from "./_harness.ts";

const PROJECT_DIR = decodeURIComponent(new URL("..", import.meta.url).pathname)
  .replace(/\/$/, "");
const HOOK = join(PROJECT_DIR, "hook.ts");
const DENO_JSON = join(PROJECT_DIR, "deno.json");
/** Liveness guard only: a hook still running after this is a failure. Not a timing assertion. */
const GUARD_MS = 10_000;

const WEB01 = {
  name: "web01",
  uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  mac: "52:54:00:12:34:56",
};

interface HookRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs hook.ts as libvirt would: `deno run -P=hook hook.ts <args>` with the
 * XML on stdin. The test configuration lives in a temporary folder, which the
 * `hook` set (scoped to /etc/mdserver) does not cover, so that folder is
 * allowed on top.
 */
async function runHook(
  args: string[],
  options: { stdin?: string; config: string; env?: Record<string, string> },
): Promise<HookRun> {
  const configDir = options.config.slice(0, options.config.lastIndexOf("/"));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "--no-prompt",
      "-P=hook",
      `--allow-read=${configDir}`,
      // The test's admin socket, where production's is /run/mdserver/admin.sock.
      `--allow-write=${configDir}`,
      `--allow-net=127.0.0.1,unix:${configDir}/run/admin.sock`,
      "--config",
      DENO_JSON,
      HOOK,
      ...args,
    ],
    env: { MDSERVER_CONFIG: options.config, NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), GUARD_MS);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(options.stdin ?? "")).catch(
    () => {},
  );
  await writer.close().catch(() => {});
  const output = await child.output();
  clearTimeout(guard);
  assert.notEqual(
    output.signal,
    "SIGKILL",
    `the hook was still running after ${GUARD_MS} ms`,
  );
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * Writes the configuration the hook reads: the service's own file, with the
 * admin socket put in through an `[_include_]`d file, as an operator would
 * keep `[admin]` in a conf.d snippet. `socket` is relative to the test's folder.
 */
async function hookConfig(
  test: TestService,
  socket = "run/admin.sock",
): Promise<string> {
  const main = await Deno.readTextFile(join(test.dir, "mdserver.conf"));
  const file = join(test.dir, "hook.conf");
  await Deno.mkdir(join(test.dir, "conf.d"), { recursive: true });
  await Deno.writeTextFile(
    join(test.dir, "conf.d", "50-admin.conf"),
    `[admin]\nsocket = ../${socket}\n`,
  );
  await Deno.writeTextFile(
    file,
    `${main}\n[_include_]\ndirectories = conf.d\n`,
  );
  return file;
}

/** Runs `body` against a fresh service started with `options` and a hook configuration for it, then closes it. */
async function withHookService(
  options: TestServiceOptions,
  body: (test: TestService, config: string) => Promise<void>,
): Promise<void> {
  const test = await startTestService(options);
  try {
    await body(test, await hookConfig(test));
  } finally {
    await test.close();
  }
}

function stderrLines(run: HookRun): string[] {
  return run.stderr.split("\n").filter((line) => line !== "");
}

Deno.test("hook.ts uploads a starting domain on prepare begin and the instance gets an address", async () => {
  await withHookService({}, async (test, config) => {
    const run = await runHook(["web01", "prepare", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
    });
    assert.deepEqual(run, { code: 0, stdout: "", stderr: "" });
    const instance = await test.service.store.getByName("web01");
    assert.ok(instance, "web01 was not registered");
    assert.equal(instance.mac, WEB01.mac);
    assert.match(instance.ipv4, /^127\.77\.\d+\.\d+$/);
    assert.notEqual(instance.ipv4, "127.77.0.1");
  });
});

Deno.test("hook.ts uploads without starting fetch, streams or Node's timers, which would add a third to its time", async () => {
  await withHookService({}, async (test, config) => {
    // deno's debug log names every built-in module loaded after start-up.
    const run = await runHook(["web01", "prepare", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
      env: { DENO_LOG: "debug" },
    });
    assert.equal(run.code, 0);
    assert.ok(await test.service.store.getByName("web01"), "web01 was not registered");
    const loaded = [...new Set(run.stderr.match(/\bext:[\w/.-]+/g) ?? [])];
    const slow = loaded.filter((name) => /^ext:(deno_fetch|deno_node|deno_web\/06_streams)/.test(name));
    assert.deepEqual(slow, [], `loaded after start-up: ${loaded.join(" ")}`);
  });
});

Deno.test("hook.ts on prepare begin exits after the config drive is complete, or says in one line why there is none", async () => {
  // The image's owner is tests/hook_config_drive_owner_test.ts's.
  await withHookService(
    { configDrives: true, ini: "[configdrive]\nmax_images = 1\nqemu_user = none\n" },
    async (test, config) => {
      const cdrom = (uuid: string) =>
        `<disk type='file' device='cdrom'><source file='${test.config.configDrive.dir}/${uuid}.iso'/></disk>`;
      const started = performance.now();
      const run = await runHook(["web01", "prepare", "begin", "-"], {
        stdin: domainXml({ ...WEB01, devices: cdrom(WEB01.uuid) }),
        config,
      });
      const ms = performance.now() - started;
      assert.deepEqual(run, { code: 0, stdout: "", stderr: "" });
      // Complete when the hook is done: QEMU opens it next.
      const image = await Deno.readFile(join(test.config.configDrive.dir, `${WEB01.uuid}.iso`));
      assert.equal(new TextDecoder().decode(image.subarray(0x8001, 0x8006)), "CD001");
      assert.ok(ms < HOOK_BUDGET_MS + 1000, `the hook took ${ms.toFixed(0)} ms`);
      const other = { name: "web02", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6c", mac: "52:54:00:12:34:57" };
      const refused = await runHook(["web02", "prepare", "begin", "-"], {
        stdin: domainXml({ ...other, devices: cdrom(other.uuid) }),
        config,
      });
      assert.equal(refused.code, 0);
      assert.deepEqual(stderrLines(refused), [
        "mdserver-hook: web02 prepare begin: config drive not built: [configdrive] max_images = 1 images exist already",
      ]);
      assert.ok(await test.service.store.getByName("web02"), "the domain is registered all the same");
    },
  );
});

Deno.test("hook.ts uploads on migrate begin and restore begin too, keeping the address", async () => {
  await withHookService({}, async (test, config) => {
    const first = await runHook(["web01", "migrate", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
    });
    assert.deepEqual(first, { code: 0, stdout: "", stderr: "" });
    const address = (await test.service.store.getByName("web01"))?.ipv4;
    assert.ok(address);
    const second = await runHook(["web01", "restore", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
    });
    assert.deepEqual(second, { code: 0, stdout: "", stderr: "" });
    assert.equal((await test.service.store.getByName("web01"))?.ipv4, address);
  });
});

Deno.test("hook.ts marks the instance stopped on release end and the address is kept", async () => {
  await withHookService({}, async (test, config) => {
    await runHook(["web01", "prepare", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
    });
    const before = await test.service.store.getByName("web01");
    assert.ok(before);
    const run = await runHook(["web01", "release", "end", "shutdown"], {
      stdin: domainXml(WEB01),
      config,
    });
    assert.deepEqual(run, { code: 0, stdout: "", stderr: "" });
    const after = await test.service.store.getByName("web01");
    assert.equal(after?.state, "stopped");
    assert.ok(after?.stoppedAt);
    assert.equal(after?.ipv4, before.ipv4);
    assert.equal(await test.service.store.allocatedCount(), 1);
  });
});

Deno.test("hook.ts exits 0 with one stderr line naming the domain when mdserver is down", async () => {
  const test = await startTestService();
  try {
    // Nothing at the socket's place, as when mdserver is not running.
    await Deno.remove(join(test.dir, "run", "admin.sock"));
    const config = await hookConfig(test);
    const run = await runHook(["web01", "prepare", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
    });
    assert.equal(run.code, 0);
    assert.equal(run.stdout, "");
    const lines = stderrLines(run);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(
      lines[0]!,
      /^mdserver-hook: web01 prepare begin: not uploaded: .*(refused|no such file|not found)/i,
    );
  } finally {
    await test.close();
  }
});

Deno.test("hook.ts gives up with one stderr line when mdserver accepts but never answers", async () => {
  const test = await startTestService();
  const silentPath = join(test.dir, "run", "admin.sock");
  // The service's socket replaced by one that accepts and never answers.
  await Deno.remove(silentPath);
  const silent = Deno.listen({ transport: "unix", path: silentPath });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    const config = await hookConfig(test);
    const run = await runHook(["web01", "prepare", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
    });
    assert.equal(run.code, 0);
    assert.equal(run.stdout, "");
    const lines = stderrLines(run);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(
      lines[0]!,
      /^mdserver-hook: web01 prepare begin: not uploaded: timed out after 2000 ms$/,
    );
  } finally {
    silent.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
    await test.close();
  }
});

Deno.test("hook.ts exits 0 with one stderr line on garbage input and the store is unchanged", async () => {
  await withHookService({}, async (test, config) => {
    await runHook(["web01", "prepare", "begin", "-"], {
      stdin: domainXml(WEB01),
      config,
    });
    const snapshot = async () => {
      const all = [];
      for await (const instance of test.service.store.list()) {
        all.push(instance);
      }
      return { all, allocated: await test.service.store.allocatedCount() };
    };
    const before = await snapshot();
    const inputs = {
      "binary junk": "\u0000\u0001 not xml at all",
      "empty input": "",
      "broken XML": "<domain type='kvm'><name>web02</name><uuid>",
      "XML that is no domain": "<network><name>mds</name></network>",
    };
    for (const [what, stdin] of Object.entries(inputs)) {
      const run = await runHook(["web02", "prepare", "begin", "-"], {
        stdin,
        config,
      });
      assert.equal(run.code, 0, what);
      assert.equal(run.stdout, "", what);
      const lines = stderrLines(run);
      assert.equal(lines.length, 1, `${what}: ${run.stderr}`);
      assert.match(
        lines[0]!,
        /^mdserver-hook: web02 prepare begin: not uploaded: /,
        what,
      );
    }
    assert.deepEqual(await snapshot(), before);
  });
});

Deno.test("hook.ts exits 0 without reading the config or contacting mdserver for other operations", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      connections++;
      conn.close();
    }
  })();
  const dir = await Deno.makeTempDir({ prefix: "mdserver-hook-" });
  try {
    const config = join(dir, "mdserver.conf");
    await Deno.writeTextFile(
      config,
      `[admin]\nport = ${(listener.addr as Deno.NetAddr).port}\n`,
    );
    const calls = [
      ["web01", "start", "begin", "-"],
      ["web01", "started", "begin", "-"],
      ["web01", "stopped", "end", "-"],
      ["web01", "reconnect", "begin", "-"],
      ["web01", "attach", "begin", "-"],
      ["web01", "prepare", "end", "-"],
    ];
    for (const args of calls) {
      const run = await runHook(args, { stdin: domainXml(WEB01), config });
      assert.deepEqual(
        run,
        { code: 0, stdout: "", stderr: "" },
        args.join(" "),
      );
    }
    // Unreadable configuration: still nothing to say for an ignored call.
    const unreadable = await runHook(["web01", "started", "begin", "-"], {
      config: join(dir, "missing.conf"),
    });
    assert.deepEqual(unreadable, { code: 0, stdout: "", stderr: "" });
    assert.equal(connections, 0);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hook.ts exits 0 with one stderr line when the configuration cannot be read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-hook-" });
  try {
    const run = await runHook(["web01", "prepare", "begin", "-"], {
      stdin: domainXml(WEB01),
      config: join(dir, "missing.conf"),
    });
    assert.equal(run.code, 0);
    assert.equal(run.stdout, "");
    const lines = stderrLines(run);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(
      lines[0]!,
      /^mdserver-hook: web01 prepare begin: not uploaded: cannot read configuration /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install-hook writes an executable wrapper that runs hook.ts with the hook permission set of deno.json", async () => {
  const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
  try {
    const result = await installHook({
      projectDir: PROJECT_DIR,
      denoPath: Deno.execPath(),
      root,
      binary: null,
    });
    const path = join(root, "etc/libvirt/hooks/qemu");
    assert.equal(result.path, path);
    assert.equal(result.kind, "wrapper");
    assert.equal(result.action, "created");
    const info = await Deno.stat(path);
    assert.equal(info.mode! & 0o777, 0o755);
    const text = await Deno.readTextFile(path);
    assert.ok(text.startsWith("#!/bin/bash\n"));
    assert.ok(text.includes(WRAPPER_MARKER));
    // deno.json's hook set, written out: deno then runs without reading a configuration file.
    const hookSet = JSON.parse(await Deno.readTextFile(join(PROJECT_DIR, "deno.json"))).permissions.hook;
    assert.ok(
      text.includes(
        `'${Deno.execPath()}' run -q --no-prompt --no-config '--allow-read=${hookSet.read.join(",")}' ` +
          `'--allow-write=${hookSet.write.join(",")}' `,
      ),
      text,
    );
    assert.ok(text.includes(`'--allow-env=MDSERVER_CONFIG' '${HOOK}' "$@"`), text);
    const syntax = await new Deno.Command("bash", { args: ["-n", path] })
      .output();
    assert.ok(syntax.success, new TextDecoder().decode(syntax.stderr));

    // An ignored call returns at once; an upload reaches deno run -P=hook,
    // whose set does not cover a config in /tmp: one line, exit 0.
    const run = async (args: string[]) => {
      const output = await new Deno.Command(path, {
        args,
        env: { MDSERVER_CONFIG: join(root, "mdserver.conf") },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decoder = new TextDecoder();
      return {
        code: output.code,
        stdout: decoder.decode(output.stdout),
        stderr: decoder.decode(output.stderr),
      };
    };
    assert.deepEqual(await run(["web01", "started", "begin", "-"]), {
      code: 0,
      stdout: "",
      stderr: "",
    });
    const upload = await run(["web01", "prepare", "begin", "-"]);
    assert.equal(upload.code, 0);
    assert.equal(upload.stdout, "");
    assert.match(
      upload.stderr,
      /^mdserver-hook: web01 prepare begin: not uploaded: cannot read configuration .*\n$/,
    );

    // A deno that cannot run still lets the domain start.
    await installHook({
      projectDir: PROJECT_DIR,
      denoPath: join(root, "no-such-deno"),
      root,
      binary: null,
    });
    const broken = await run(["web01", "prepare", "begin", "-"]);
    assert.equal(broken.code, 0);
    assert.equal(broken.stdout, "");
    assert.match(
      broken.stderr,
      /mdserver-hook: web01 prepare begin: the hook could not run \(exit status 127\)\n$/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("install-hook writes the hook set as deno would read it, and refuses one deno would not take", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-hook-set-" });
  try {
    const write = (hook: unknown) =>
      Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify({ permissions: { hook } }));
    await write({
      read: ["conf", "/etc/mdserver"],
      net: { allow: ["127.0.0.1"], deny: ["[::1]"] },
      env: true,
      sys: false,
    });
    assert.deepEqual(await hookPermissionFlags(dir), [
      `--allow-read=${dir}/conf,/etc/mdserver`,
      "--allow-net=127.0.0.1",
      "--deny-net=[::1]",
      "--allow-env",
    ]);
    await write({ reed: ["/etc/mdserver"] });
    await assert.rejects(hookPermissionFlags(dir), /permission "reed" of the "hook" set/);
    await Deno.writeTextFile(join(dir, "deno.json"), "{}");
    await assert.rejects(hookPermissionFlags(dir), /has no "hook" permission set/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install-hook refuses to overwrite a hook it did not write, and keeps it as .orig with --force", async () => {
  const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
  try {
    const path = join(root, "etc/libvirt/hooks/qemu");
    await Deno.mkdir(join(root, "etc/libvirt/hooks"), { recursive: true });
    const foreign = "#!/bin/sh\n# someone else's hook\nexit 0\n";
    await Deno.writeTextFile(path, foreign, { mode: 0o755 });
    const options = {
      projectDir: PROJECT_DIR,
      denoPath: Deno.execPath(),
      root,
      binary: null,
    };

    await assert.rejects(installHook(options), (error: unknown) => {
      assert.ok(error instanceof HookExistsError);
      assert.match(error.message, /--force/);
      assert.match(error.message, /qemu\.d\/mdserver/);
      return true;
    });
    assert.equal(await Deno.readTextFile(path), foreign);

    const forced = await installHook({ ...options, force: true });
    assert.equal(forced.action, "replaced");
    assert.equal(forced.backup, `${path}.orig`);
    assert.equal(await Deno.readTextFile(`${path}.orig`), foreign);
    assert.ok((await Deno.readTextFile(path)).includes(WRAPPER_MARKER));

    // mdserver's own wrapper is replaced or kept without --force.
    assert.equal((await installHook(options)).action, "unchanged");
    const moved = await installHook({
      ...options,
      denoPath: "/opt/deno/bin/deno",
    });
    assert.equal(moved.action, "replaced");
    assert.equal(moved.backup, null);
    assert.ok(
      (await Deno.readTextFile(path)).includes("'/opt/deno/bin/deno' run"),
    );
    assert.equal(await Deno.readTextFile(`${path}.orig`), foreign);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("install-hook installs the compiled hook when it exists", async () => {
  const root = await Deno.makeTempDir({ prefix: "mdserver-install-" });
  try {
    const project = join(root, "project");
    await Deno.mkdir(join(project, "dist"), { recursive: true });
    const bytes = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]);
    await Deno.writeFile(join(project, "dist/mdserver-hook"), bytes);
    const result = await installHook({
      projectDir: project,
      denoPath: Deno.execPath(),
      root,
    });
    assert.equal(result.kind, "binary");
    assert.deepEqual(await Deno.readFile(result.path), bytes);
    assert.equal((await Deno.stat(result.path)).mode! & 0o777, 0o755);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ctl gc removes instances of domains virsh no longer lists through the admin API", async () => {
  const test = await startTestService();
  const removedEvents: string[] = [];
  test.service.store.subscribe((event) => {
    if (event.type === "delete") removedEvents.push(event.instance.name);
  });
  try {
    const config = await hookConfig(test);
    const domains = [
      WEB01,
      {
        name: "web02",
        uuid: "7f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        mac: "52:54:00:12:34:57",
      },
      {
        name: "gone01",
        uuid: "8f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        mac: "52:54:00:12:34:58",
      },
    ];
    for (const domain of domains) {
      assert.equal((await test.upload(domainXml(domain))).status, 201);
    }
    const gone = await test.service.store.getByName("gone01");
    const lines: string[] = [];
    const line = (args: string[], flags: string[]) => ({
      args,
      options: new Map<string, string | true>(
        flags.map((flag) => [flag, true] as [string, true]),
      ),
    });
    const deps = {
      configFile: config,
      print: (text: string) => lines.push(text),
      listDomains: () => Promise.resolve(["web01", "web02", "other-vm"]),
    };

    assert.equal(await runCtl(line(["gc"], ["virsh", "dry-run"]), deps), 0);
    assert.equal(
      lines[0],
      `would remove gone01 ${gone!.ipv4} ${gone!.mac} ${gone!.uuid}: no such domain in libvirt`,
    );
    assert.equal(await test.service.store.allocatedCount(), 3);

    lines.length = 0;
    assert.equal(await runCtl(line(["gc"], ["virsh"]), deps), 0);
    assert.match(lines[0]!, /^removed gone01 /);
    assert.match(lines.at(-1)!, /^gc: removed 1 of 3 instance\(s\)/);
    assert.equal(await test.service.store.getByName("gone01"), null);
    assert.equal(await test.service.store.allocatedCount(), 2);
    assert.deepEqual(removedEvents, ["gone01"]);
  } finally {
    await test.close();
  }
});
