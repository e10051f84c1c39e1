import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, formatConfig, loadConfig } from "./mod.ts";
import { formatIpv4 } from "../ipam/ipv4.ts";
import { tempDir } from "../_temp_dir.ts";

async function tempTree(files: Record<string, string>): Promise<string> {
  const dir = await tempDir("mdserver-config-");
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, name);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    if (name.endsWith("/")) await Deno.mkdir(path, { recursive: true });
    else await Deno.writeTextFile(path, text);
  }
  return dir;
}

async function configErrors(files: Record<string, string>): Promise<string> {
  const dir = await tempTree({ "userdata/": "", ...files });
  try {
    await loadConfig(join(dir, "mdserver.conf"));
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail("configuration was accepted");
}

// md_server's own test configuration, in its own spelling (hyphenated key,
// trailing comma, True, an empty [_include_]).
const MD_SERVER_TEST_CONF = `# Note: all the directories are set in the included files.
[mdserver]
listen_address=127.1.0.1
port=8001
password = password-test
hostname-prefix = vm-test
loglevel=debug
debug=yes
userdata_dir = userdata

[loglevels]
base=debug
stream=debug
file=debug

[dnsmasq]
entry_order = prefix,domain,base
prefix=thing-
domain=example.com
interface=lo
use_dns=True
gateway=127.1.0.1
net_address=127.1.0.0
net_prefix=16

[public-keys]
default = not a real key

[service]
ec2_versions = 2009-04-04, latest,
version = 0.1.2-test
location = testing_123

[template-data]
foo=bar
_config_items_ = 'dnsmasq.prefix,dnsmasq.domain'

[_include_]
`;

Deno.test("loadConfig() reads md_server's test configuration unchanged", async () => {
  const dir = await tempTree({ "mdserver.conf": MD_SERVER_TEST_CONF, "userdata/": "" });
  const config = await loadConfig(join(dir, "mdserver.conf"));
  assert.equal(config.mdserver.listenAddress, "127.1.0.1");
  assert.equal(config.mdserver.port, 8001);
  assert.equal(config.mdserver.password, "password-test");
  assert.equal(config.mdserver.debug, true);
  assert.equal(config.loglevels.base, "debug");
  assert.deepEqual(config.dnsmasq.entryOrder, ["prefix", "domain", "base"]);
  assert.equal(config.dnsmasq.prefix, "thing-");
  assert.equal(config.dnsmasq.domain, "example.com");
  assert.equal(config.dnsmasq.useDns, true);
  assert.equal(formatIpv4(config.dnsmasq.network.address), "127.1.0.0");
  assert.equal(config.dnsmasq.network.prefix, 16);
  assert.deepEqual([...config.publicKeys], [["default", "not a real key"]]);
  assert.deepEqual(config.service.ec2Versions, ["2009-04-04", "latest"]);
  assert.equal(config.service.location, "testing_123");
  assert.deepEqual(config.templateData, { foo: "bar", prefix: "thing-", domain: "example.com" });
});

Deno.test("loadConfig() gives md_server's defaults for an empty file", async () => {
  const dir = await tempTree({ "mdserver.conf": "[mdserver]\nuserdata_dir = ud\n", "ud/": "" });
  const config = await loadConfig(join(dir, "mdserver.conf"));
  assert.equal(config.mdserver.listenAddress, "169.254.169.254");
  assert.equal(config.mdserver.port, 80);
  assert.deepEqual(config.mdserver.userdataSuffixes, ["", ".yaml"]);
  assert.equal(config.mdserver.kvFile, "/var/lib/mdserver/mdserver.kv");
  assert.equal(config.dnsmasq.netName, "mds");
  assert.equal(config.dnsmasq.gateway, "10.122.0.1");
  assert.equal(config.dnsmasq.leaseLen, 86400);
  assert.equal(config.dnsmasq.prefix, null);
  assert.equal(config.dnsmasq.domain, null);
  // The admin API is a unix socket; TCP is off.
  assert.equal(config.admin.listenAddress, null);
  assert.equal(config.admin.socket, "/run/mdserver/admin.sock");
  assert.equal(config.mdserver.legacyUpload, true);
  assert.equal(config.dnsmasq.manage, "no");
  assert.equal(config.mdserver.imdsTokens, "optional");
});

Deno.test("loadConfig() applies [_include_] directories then files, last value winning", async () => {
  const dir = await tempTree({
    "mdserver.conf": "[mdserver]\nuserdata_dir = ud\nport = 81\n" +
      "[_include_]\ndirectories = conf.d:missing.d\nfiles = local.conf:missing.conf\n",
    "ud/": "",
    "conf.d/20-b.conf": "[mdserver]\nport = 83\n[service]\nlocation = from-b\n",
    "conf.d/10-a.conf": "[mdserver]\nport = 82\n[service]\nname = from-a\n",
    "conf.d/.hidden.conf": "[mdserver]\nport = 99\n",
    "conf.d/notes.txt": "[mdserver]\nport = 98\n",
    "local.conf": "[service]\nlocation = from-local\n",
  });
  const config = await loadConfig(join(dir, "mdserver.conf"));
  assert.equal(config.mdserver.port, 83);
  assert.equal(config.service.name, "from-a");
  assert.equal(config.service.location, "from-local");
  assert.deepEqual(config.files.map((file) => file.slice(dir.length + 1)), [
    "mdserver.conf",
    "conf.d/10-a.conf",
    "conf.d/20-b.conf",
    "local.conf",
  ]);
  assert.equal(config.warnings.length, 2, config.warnings.join("\n"));
});

Deno.test("loadConfig() resolves relative paths against the file that sets them", async () => {
  const dir = await tempTree({
    "etc/mdserver.conf": "[mdserver]\nuserdata_dir = ud\nkv_file = ../data/x.kv\n",
    "etc/ud/": "",
  });
  const config = await loadConfig(join(dir, "etc/mdserver.conf"));
  assert.equal(config.mdserver.userdataDir, join(dir, "etc/ud"));
  assert.equal(config.mdserver.kvFile, join(dir, "data/x.kv"));
});

Deno.test("loadConfig() reports an unknown section with file and section", async () => {
  const message = await configErrors({
    "mdserver.conf": "[mdserver]\nuserdata_dir = userdata\n[mdsrever]\nport = 1\n",
  });
  assert.match(message, /mdserver\.conf: \[mdsrever\]: unknown section/);
});

Deno.test("loadConfig() reports an unknown key with file, section and key", async () => {
  const message = await configErrors({
    "mdserver.conf": "[dnsmasq]\nlease_length = 5\n[mdserver]\nuserdata_dir = userdata\n",
  });
  assert.match(message, /mdserver\.conf: \[dnsmasq\] lease_length: unknown key \(line 2\)/);
});

Deno.test("loadConfig() reports a bad address, a prefix out of range and a gateway outside the network", async () => {
  const message = await configErrors({
    "mdserver.conf": "[mdserver]\nuserdata_dir = userdata\nlisten_address = 169.254.169.300\n" +
      "[dnsmasq]\nnet_address = 10.9.0.0\nnet_prefix = 33\n",
  });
  assert.match(message, /\[mdserver\] listen_address: "169\.254\.169\.300" is not an IPv4 address/);
  assert.match(message, /\[dnsmasq\] net_prefix: expected a whole number from 8 to 30, got "33"/);

  const gateway = await configErrors({
    "mdserver.conf":
      "[mdserver]\nuserdata_dir = userdata\n[dnsmasq]\nnet_address = 10.9.0.0\nnet_prefix = 24\ngateway = 10.8.0.1\n",
  });
  assert.match(gateway, /\[dnsmasq\] gateway: "10\.8\.0\.1" is outside the network 10\.9\.0\.0\/24/);
});

Deno.test("loadConfig() reports a missing userdata_dir", async () => {
  const dir = await tempTree({ "mdserver.conf": "[mdserver]\nuserdata_dir = /nonexistent/userdata\n" });
  await assert.rejects(
    () => loadConfig(join(dir, "mdserver.conf")),
    (error: Error) =>
      /\[mdserver\] userdata_dir: directory "\/nonexistent\/userdata" does not exist/.test(error.message),
  );
});

Deno.test("loadConfig() reports an unreadable include", async () => {
  const message = await configErrors({
    "mdserver.conf": "[mdserver]\nuserdata_dir = userdata\n[_include_]\nfiles = broken.conf\n",
    "broken.conf": "this is not ini\n",
  });
  assert.match(message, /broken\.conf: .*line 1: expected "key = value"/);
  const notFile = await configErrors({
    "mdserver.conf": "[mdserver]\nuserdata_dir = userdata\n[_include_]\nfiles = userdata\n",
  });
  assert.match(notFile, /\[_include_\] files: ".*userdata" is not a regular file/);
});

Deno.test("loadConfig() reports a missing main file", async () => {
  await assert.rejects(
    () => loadConfig("/nonexistent/mdserver.conf"),
    (error: Error) => /^\/nonexistent\/mdserver\.conf: the file does not exist \(give/.test(error.message),
  );
});

Deno.test("loadConfig() reports every error in one pass, each at its line, with the nearest known name", async () => {
  const errors = await configErrors({
    "mdserver.conf": "[mdserver]\nuserdata_dir = userdata\nlisten_adress = 127.0.0.1\n[dnsmasq]\nnet_prefix = 33\n" +
      "[servce]\n[frobnicate]\n",
    "userdata/": "",
  });
  assert.match(errors, /\[mdserver\] listen_adress: unknown key \(line 3\); did you mean listen_address\?/);
  assert.match(errors, /\[dnsmasq\] net_prefix: expected a whole number from 8 to 30, got "33" \(line 5\)/);
  assert.match(errors, /\[servce\]: unknown section \(line 6\); did you mean \[service\]\?/);
  assert.match(errors, /\[frobnicate\]: unknown section \(line 7\); known sections: /);
});

Deno.test("loadConfig() reads a relative default_template as a file of userdata_dir", async () => {
  const dir = await tempTree({
    "etc/mdserver.conf": "[mdserver]\nuserdata_dir = ../templates\ndefault_template = base.yaml\n",
    "templates/base.yaml": "#cloud-config\n",
  });
  const config = await loadConfig(join(dir, "etc/mdserver.conf"));
  assert.equal(config.mdserver.defaultTemplate, join(dir, "templates/base.yaml"));
});

Deno.test("loadConfig() reads continuation lines, colons and %% as configparser does", async () => {
  const dir = await tempTree({
    "mdserver.conf": "[mdserver]\nuserdata_dir: ud\n[template-data]\nmotd = first\n  second\nrate = 50%%\n",
    "ud/": "",
  });
  const config = await loadConfig(join(dir, "mdserver.conf"));
  assert.equal(config.templateData.motd, "first\nsecond");
  assert.equal(config.templateData.rate, "50%");
});

Deno.test("formatConfig() prints the effective configuration with the password masked", async () => {
  const dir = await tempTree({ "mdserver.conf": MD_SERVER_TEST_CONF, "userdata/": "" });
  const text = formatConfig(await loadConfig(join(dir, "mdserver.conf")));
  assert.match(text, /\[dnsmasq\][^[]*domain = example\.com/);
  assert.match(text, /password = \*{8}/);
  assert.doesNotMatch(text, /password-test/);
});

Deno.test("loadConfig() judges no key by a network that failed its own check (no follow-on errors)", async () => {
  const errors = await configErrors({
    "mdserver.conf": "[mdserver]\nuserdata_dir = userdata\n[dnsmasq]\nnet_address = 127.100.0.0\nnet_prefix = 7\n" +
      "gateway = 10.0.0.1\n",
  });
  assert.match(errors, /\[dnsmasq\] net_prefix: expected a whole number from 8 to 30, got "7" \(line 5\)/);
  assert.doesNotMatch(errors, /gateway/);
});
