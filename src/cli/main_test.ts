import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../_temp_dir.ts";
import { startService } from "../service/mod.ts";
import { commandHelp, parseCommandLine, type Parsed, synopsis } from "./args.ts";
import { COMMANDS } from "./commands.ts";
import { type CliDeps, configPath, runMain, USAGE } from "./main.ts";

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

/** The command line of a parse that runs a command. */
function lineOf(argv: string[]) {
  const parsed = parseCommandLine(argv);
  assert.equal(parsed.kind, "run");
  return (parsed as Extract<Parsed, { kind: "run" }>).line;
}

Deno.test("parseCommandLine() reads each command's own options, short forms and --name=value", () => {
  const line = lineOf(["gc", "--virsh", "-c", "a.conf", "--older-than=7d"]);
  assert.equal(line.command, "gc");
  assert.deepEqual([...line.options].sort(), [["config", "a.conf"], ["older-than", "7d"], ["virsh", true]]);
  assert.deepEqual(lineOf(["seed-iso", "web01", "--format", "nocloud", "-o", "x.iso"]).args, ["web01"]);
  assert.deepEqual(lineOf(["ctl", "show", "web01"]).args, ["web01"]);
});

Deno.test("configPath() takes --config, then the positional file, then MDSERVER_CONFIG, then the default", () => {
  const env = (name: string) => name === "MDSERVER_CONFIG" ? "/from/env.conf" : undefined;
  assert.equal(configPath(lineOf(["serve", "--config", "/opt.conf", "/pos.conf"]), env, "/pos.conf"), "/opt.conf");
  assert.equal(configPath(lineOf(["serve", "/pos.conf"]), env, "/pos.conf"), "/pos.conf");
  assert.equal(configPath(lineOf(["serve"]), env), "/from/env.conf");
  assert.equal(configPath(lineOf(["serve"]), () => undefined), "/etc/mdserver/mdserver.conf");
});

Deno.test("runMain() prints the top-level help for help and --help (0), and a usage error without a command (2)", async () => {
  for (const argv of [["help"], ["--help"], ["ctl"]]) {
    const { deps, out, err } = capture();
    assert.equal(await runMain(argv, deps), 0, argv.join(" "));
    assert.deepEqual([out, err], [[USAGE], []]);
  }
  const { deps, out, err } = capture();
  assert.equal(await runMain([], deps), 2);
  assert.deepEqual(out, []);
  assert.equal(err[0], "mdserver: error: no command given");
});

for (const spec of COMMANDS) {
  Deno.test(`mdserver ${spec.name}: help CMD, --help and -h print its usage, options and example (0)`, async () => {
    for (const argv of [["help", spec.name], [spec.name, "--help"], [spec.name, "-h"]]) {
      const { deps, out, err } = capture();
      assert.equal(await runMain(argv, deps), 0, argv.join(" "));
      assert.deepEqual(err, []);
      assert.equal(out[0], commandHelp(spec));
      assert.match(out[0]!, new RegExp(`^usage: mdserver ${spec.name}`));
      assert.match(out[0]!, /\noptions:\n[^]*--help[^]*\nexample:\n {2}mdserver /);
    }
  });
  Deno.test(`mdserver ${spec.name}: an unknown option is a usage error (2) that reads nothing else`, async () => {
    const { deps, out, err } = capture();
    assert.equal(await runMain([spec.name, "--jsn", "--config", "/nonexistent.conf"], deps), 2);
    assert.deepEqual(out, []);
    assert.match(err[0]!, new RegExp(`^mdserver: error: ${spec.name} has no option "--jsn"`));
    assert.equal(err[1], `usage: ${synopsis(spec)} (mdserver help ${spec.name})`);
    const required = spec.positionals.find((positional) => positional.required);
    if (required) {
      const missing = capture();
      assert.equal(await runMain([spec.name], missing.deps), 2);
      assert.equal(missing.err[0], `mdserver: error: ${spec.name} needs ${required.name}`);
    }
  });
}

Deno.test("runMain() refuses an unknown command with the nearest one, and an option without its value (2)", async () => {
  const unknown = capture();
  assert.equal(await runMain(["lst"], unknown.deps), 2);
  assert.equal(unknown.err[0], 'mdserver: error: unknown command "lst"; did you mean "list"?');
  const option = capture();
  assert.equal(await runMain(["check-config", "--config"], option.deps), 2);
  assert.equal(option.err[0], "mdserver: error: option --config needs a value");
  const typo = capture();
  assert.equal(await runMain(["list", "--jsn"], typo.deps), 2);
  assert.equal(typo.err[0], 'mdserver: error: list has no option "--jsn"; did you mean "--json"?');
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

Deno.test("runMain() check-config warns of a qemu_user the hook cannot resolve, and still exits 0", async () => {
  const typo = capture();
  assert.equal(
    await runMain(["check-config", await configFile("[configdrive]\nqemu_user = nobdy:nogroup\n")], typo.deps),
    0,
  );
  assert.deepEqual(typo.err, [
    'mdserver: warning: [configdrive] qemu_user = nobdy:nogroup: config drives stay the service\'s: no user "nobdy" in /etc/passwd',
  ]);
  const right = capture();
  assert.equal(
    await runMain(["check-config", await configFile("[configdrive]\nqemu_user = nobody:nogroup\n")], right.deps),
    0,
  );
  assert.deepEqual(right.err, []);
});

Deno.test("runMain() reports configuration errors with file and key, exit code 1", async () => {
  const file = await configFile("lease_len = soon\n");
  const { deps, out, err } = capture({ MDSERVER_CONFIG: file });
  assert.equal(await runMain(["check-config"], deps), 1);
  assert.deepEqual(out, []);
  assert.match(err[0]!, /^mdserver: error: .*mdserver\.conf: \[dnsmasq\] lease_len: expected a whole number/);
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
  assert.equal(err[0], 'mdserver: error: "/nonexistent/db_file.json": no such file or directory');
  const missing = capture();
  assert.equal(await runMain(["check-config", "/nonexistent/mdserver.conf"], missing.deps), 1);
  assert.equal(
    missing.err[0],
    "mdserver: error: /nonexistent/mdserver.conf: the file does not exist (give the configuration with --config FILE or $MDSERVER_CONFIG)",
  );
});
