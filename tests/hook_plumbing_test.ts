/**
 * The hook as libvirt runs it cannot be held up by its plumbing: the
 * installed wrapper's logger holds none of libvirt's pipes, and a unix
 * socket that accepts but never answers costs only its part of the budget
 * before the upload goes over TCP.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hookPermissionFlags, hookWrapper } from "../src/hook/install.ts";
import { domainXml, startTestService } from "./_harness.ts";
import { poll } from "./_netns.ts";

const PROJECT_DIR = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const WEB = { name: "plumb01", uuid: "0000000e-0000-4000-8000-000000000001", mac: "52:54:00:0e:00:01" };
/** Liveness guard only. */
const GUARD_MS = 20_000;

/** Runs a program as libvirt runs a hook: XML on stdin, stdout and stderr read to EOF; the time until both end. */
async function runAsLibvirt(
  command: string,
  args: string[],
  options: { stdin: string; env: Record<string, string> },
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  const child = new Deno.Command(command, {
    args,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), GUARD_MS);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
  await writer.close().catch(() => {});
  // libvirt reads both pipes to EOF: output() resolves only when every holder of them has closed them.
  const output = await child.output();
  clearTimeout(guard);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    ms: performance.now() - started,
  };
}

Deno.test("the installed wrapper returns to libvirt at once even when logger hangs, and logger gets the report", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-hook-plumbing-" });
  try {
    const seen = join(dir, "logger-args");
    const logger = join(dir, "logger");
    // A logger that takes the line and then hangs, as one blocked on a full /dev/log would.
    await Deno.writeTextFile(logger, `#!/bin/sh\nprintf '%s\\n' "$*" > '${seen}'\nexec sleep 30\n`, { mode: 0o755 });
    const wrapper = join(dir, "qemu");
    await Deno.writeTextFile(
      wrapper,
      hookWrapper({
        denoPath: Deno.execPath(),
        projectDir: PROJECT_DIR,
        permissionFlags: await hookPermissionFlags(PROJECT_DIR),
        loggerPath: logger,
      }),
      {
        mode: 0o755,
      },
    );
    // mdserver is down (a closed port): the hook reports one line quickly.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const config = join(dir, "mdserver.conf");
    await Deno.writeTextFile(config, `[admin]\nlisten_address = 127.0.0.1\nport = ${port}\n`);
    // The hook set reads /etc/mdserver only: the test's folder is allowed through deno's config-free flag below.
    const run = await runAsLibvirt("bash", [wrapper, WEB.name, "prepare", "begin", "-"], {
      stdin: domainXml(WEB),
      env: { MDSERVER_CONFIG: config, DENO_FLAGS: "" },
    });
    assert.equal(run.code, 0);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^mdserver-hook: plumb01 prepare begin: not uploaded: /);
    // The hook's own budget is 2 s; a logger holding the pipes would keep them open for 30 s.
    assert.ok(run.ms < 5_000, `libvirt waited ${run.ms.toFixed(0)} ms`);
    const logged = await poll("logger got the report", async () => {
      const text = await Deno.readTextFile(seen).catch(() => "");
      return text === "" ? undefined : text;
    });
    assert.match(
      logged,
      /^-t mdserver-hook -p daemon\.warning -- mdserver-hook: plumb01 prepare begin: not uploaded: /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hook.ts uploads over TCP when the unix socket accepts but never answers", async () => {
  const t = await startTestService({ adminTcp: true });
  const dir = await Deno.makeTempDir({ prefix: "mdserver-hook-socket-" });
  const socket = join(dir, "admin.sock");
  // A listener that accepts and never answers, in its own process (the test set opens no unix sockets).
  const accepted = join(dir, "accepted");
  const hung = new Deno.Command("/usr/bin/python3", {
    args: [
      "-c",
      "import socket, sys, time\n" +
      "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16); held = []\n" +
      "print('ready', flush=True)\n" +
      "while True:\n  held.append(s.accept()); open(sys.argv[2], 'a').write('x')\n",
      socket,
      accepted,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = hung.stdout.getReader();
  await reader.read();
  reader.releaseLock();
  try {
    const config = join(dir, "mdserver.conf");
    await Deno.writeTextFile(
      config,
      `[admin]\nlisten_address = ${t.config.admin.listenAddress}\nport = ${t.service.adminPort}\nsocket = ${socket}\n` +
        `socket_timeout = 500\ntoken_file = ${t.config.admin.tokenFile}\n`,
    );
    const run = await runAsLibvirt(Deno.execPath(), [
      "run",
      "-q",
      "--no-prompt",
      "-P=hook",
      `--allow-read=${dir}`,
      `--allow-write=${socket}`,
      `--allow-net=${t.config.admin.listenAddress},unix:${socket}`,
      `--allow-read=${t.config.admin.tokenFile}`,
      "--config",
      join(PROJECT_DIR, "deno.json"),
      join(PROJECT_DIR, "hook.ts"),
      WEB.name,
      "prepare",
      "begin",
      "-",
    ], { stdin: domainXml(WEB), env: { MDSERVER_CONFIG: config } });
    assert.equal(run.code, 0);
    assert.equal(run.stderr, "", "the upload should have gone through over TCP");
    assert.ok((await Deno.readTextFile(accepted).catch(() => "")).length >= 1, "the hook did not try the socket first");
    assert.equal((await t.service.store.getByName(WEB.name))?.uuid, WEB.uuid);
  } finally {
    hung.kill("SIGKILL");
    await hung.status;
    await hung.stdout.cancel().catch(() => {});
    await t.close();
    await Deno.remove(dir, { recursive: true });
  }
});
