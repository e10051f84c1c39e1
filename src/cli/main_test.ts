import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../_temp_dir.ts";
import { startService } from "../service/mod.ts";
import { type CliDeps, configPath, parseCommandLine, runMain, USAGE } from "./main.ts";

/** Real dependencies, with output, environment and signals captured. */
function capture(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const signals = new Map<string, () => void>();
  const started: string[] = [];
  const deps: CliDeps = {
    print: (text) => out.push(text),
    printError: (text) => err.push(text),
    env: (name) => env[name],
    projectDir: "/nonexistent/project/",
    execPath: Deno.execPath(),
    runProgram: () => Promise.reject(new Error("no program runs in this test")),
    startService: (config, options) => {
      started.push(config.files[0]!);
      return startService(config, options);
    },
    onSignal: (signal, handler) => signals.set(signal, handler),
  };
  return { deps, out, err, signals, started };
}

/** A configuration that serves on loopback ports chosen by the system, in a temporary folder. */
async function configFile(extra = ""): Promise<string> {
  const dir = await tempDir("mdserver-cli-");
  await Deno.mkdir(join(dir, "userdata"));
  const file = join(dir, "mdserver.conf");
  await Deno.writeTextFile(
    file,
    `[mdserver]\nlisten_address = 127.0.0.1\nport = 0\nuserdata_dir = userdata\nkv_file = mdserver.kv\npassword = s3cret\n` +
      `[admin]\nsocket = run/admin.sock\n[dnsmasq]\nbase_dir = dnsmasq\nrun_dir = run\n${extra}`,
  );
  return file;
}

Deno.test("parseCommandLine() splits command, arguments, --name value, --name=value and flags", () => {
  const line = parseCommandLine(["ctl", "list", "--json", "--config", "a.conf", "--older-than=7d", "-h"]);
  assert.equal(line.command, "ctl");
  assert.deepEqual(line.args, ["list"]);
  assert.deepEqual(
    [...line.options],
    [["json", true], ["config", "a.conf"], ["older-than", "7d"], ["help", true]],
  );
  assert.throws(() => parseCommandLine(["serve", "--config"]), {
    name: "TypeError",
    message: /--config needs a value/,
  });
});

Deno.test("configPath() takes --config, then the positional file, then MDSERVER_CONFIG, then the default", () => {
  const env = (name: string) => name === "MDSERVER_CONFIG" ? "/from/env.conf" : undefined;
  assert.equal(
    configPath(parseCommandLine(["serve", "--config", "/opt.conf", "/pos.conf"]), env, "/pos.conf"),
    "/opt.conf",
  );
  assert.equal(configPath(parseCommandLine(["serve", "/pos.conf"]), env, "/pos.conf"), "/pos.conf");
  assert.equal(configPath(parseCommandLine(["serve"]), env), "/from/env.conf");
  assert.equal(configPath(parseCommandLine(["serve"]), () => undefined), "/etc/mdserver/mdserver.conf");
});

Deno.test("runMain() prints the usage: to stdout for help (0), to stderr without a command (2)", async () => {
  for (const argv of [["help"], ["--help"], ["serve", "-h"]]) {
    const { deps, out, err } = capture();
    assert.equal(await runMain(argv, deps), 0, argv.join(" "));
    assert.deepEqual([out, err], [[USAGE], []]);
  }
  const { deps, out, err } = capture();
  assert.equal(await runMain([], deps), 2);
  assert.deepEqual([out, err], [[], [USAGE]]);
});

Deno.test("runMain() refuses an unknown command and a bad option with the usage and exit code 2", async () => {
  const unknown = capture();
  assert.equal(await runMain(["frobnicate"], unknown.deps), 2);
  assert.match(unknown.err[0]!, /^mdserver: unknown command "frobnicate"\nusage:/);
  const option = capture();
  assert.equal(await runMain(["check-config", "--config"], option.deps), 2);
  assert.match(option.err[0]!, /^mdserver: option --config needs a value\nusage:/);
});

Deno.test("runMain() check-config prints the effective configuration with the password masked", async () => {
  const file = await configFile();
  const { deps, out, err } = capture({ MDSERVER_CONFIG: "/does/not/matter.conf" });
  assert.equal(await runMain(["check-config", file], deps), 0);
  assert.deepEqual(err, []);
  assert.match(out[0]!, new RegExp(`^# files read: ${file}\n`));
  assert.match(out[0]!, /\npassword = \*{8}\n/);
  assert.doesNotMatch(out[0]!, /s3cret/);
});

Deno.test("runMain() reports configuration errors with file and key, exit code 1", async () => {
  const file = await configFile("lease_len = soon\n");
  const { deps, out, err } = capture({ MDSERVER_CONFIG: file });
  assert.equal(await runMain(["check-config"], deps), 1);
  assert.deepEqual(out, []);
  assert.match(
    err[0]!,
    /^mdserver: configuration errors:\n.*mdserver\.conf: \[dnsmasq\] lease_len: expected a whole number/,
  );
});

Deno.test("runMain() serves md_server's form `mdserver FILE` until SIGTERM, then exits 0", async () => {
  const file = await configFile();
  const { deps, signals, started } = capture();
  const exit = runMain([file], deps);
  for (let i = 0; i < 200 && !signals.has("SIGTERM"); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(started, [file]);
  assert.deepEqual([...signals.keys()].sort(), ["SIGHUP", "SIGINT", "SIGTERM"]);
  signals.get("SIGTERM")!();
  assert.equal(await exit, 0);
});

Deno.test("runMain() reports a failing command on one line with exit code 1", async () => {
  const file = await configFile();
  const { deps, err } = capture();
  assert.equal(await runMain(["import-md-server", "/nonexistent/db_file.json", "--config", file], deps), 1);
  assert.equal(err.length, 1);
  assert.match(err[0]!, /^mdserver: .*\/nonexistent\/db_file\.json/);
  const missing = capture();
  assert.equal(await runMain(["check-config", "/nonexistent/mdserver.conf"], missing.deps), 1);
  assert.match(missing.err[0]!, /cannot read "\/nonexistent\/mdserver\.conf"/);
});
