import assert from "node:assert/strict";
import { join } from "node:path";
import { type Config, type ConfigEnvironment, loadConfig } from "../config/mod.ts";
import {
  applyStoreEvent,
  dnsmasqPaths,
  rebuildHostRecords,
  recordFileName,
  removeHostRecord,
  renderDhcpHost,
  renderDnsmasqConf,
  renderDnsmasqOpts,
  renderHostsEntry,
  writeDnsmasqConfig,
  writeHostRecord,
} from "./mod.ts";
import { DEFAULT_BACKOFF, nextDelay } from "./mod.ts";
import type { Instance } from "../store/instance.ts";

/** A configuration from INI text, without touching the file system. */
async function configFrom(dnsmasq: string, mdserver = ""): Promise<Config> {
  const text = `[mdserver]\nuserdata_dir = /ud\n${mdserver}\n[dnsmasq]\n${dnsmasq}\n`;
  const env: ConfigEnvironment = {
    readTextFile: () => Promise.resolve(text),
    stat: (path) =>
      Promise.resolve(
        path === "/ud" ? { isFile: false, isDirectory: true } : null,
      ),
    readDir: () => Promise.resolve([]),
    hostname: () => "kvm1",
  };
  return await loadConfig("/etc/mdserver/mdserver.conf", env);
}

function instance(overrides: Partial<Instance> = {}): Instance {
  return {
    uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
    name: "Web_01",
    instanceId: "i-6f1a3c2e5b7d4e8f9",
    mac: "52:54:00:12:34:56",
    ipv4: "10.122.0.2",
    vcpus: 2,
    memoryMiB: 2048,
    metadata: {},
    tags: {},
    location: "kvm1",
    state: "registered",
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:00.000Z",
    stoppedAt: null,
    ...overrides,
  };
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function tempConfig(): Promise<{ config: Config; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-dnsmasq-" });
  const config = await configFrom(
    `base_dir = ${dir}/dnsmasq\nrun_dir = ${dir}/run\nprefix = vm-\ndomain = mds.test\nentry_order = fqdn,prefix,base`,
  );
  await writeDnsmasqConfig(config);
  return { config, dir };
}

Deno.test("renderDnsmasqConf() writes the interface, a static range with the lease time, pid file, user and port", async () => {
  const config = await configFrom(
    "lease_len = 3600\ndns_port = 5353\nlisten_address = 10.122.0.1\nuser = dnsmasq",
  );
  const conf = renderDnsmasqConf(config).split("\n");
  for (
    const line of [
      "interface=br-mds",
      "listen-address=10.122.0.1",
      "bind-dynamic",
      "port=5353",
      "user=dnsmasq",
      "pid-file=/var/run/mdserver/mds.pid",
      "dhcp-range=10.122.0.0,static,255.255.0.0,3600",
      "dhcp-ignore=tag:!known",
      "leasefile-ro",
      "dhcp-authoritative",
      "dhcp-optsfile=/var/lib/mdserver/dnsmasq/mds.opts",
      "dhcp-hostsdir=/var/lib/mdserver/dnsmasq/dhcp-hosts",
      "hostsdir=/var/lib/mdserver/dnsmasq/hosts",
    ]
  ) assert.ok(conf.includes(line), `missing "${line}" in:\n${conf.join("\n")}`);
  assert.ok(
    !conf.some((line) => line.startsWith("dhcp-lease-max")),
    "lease_len is a lease time, not a lease count",
  );
  assert.ok(
    !conf.some((line) => line.startsWith("domain=") || line === "expand-hosts"),
  );
});

Deno.test("renderDnsmasqConf() answers the domain and the reverse zone locally when a domain is set", async () => {
  const conf = renderDnsmasqConf(await configFrom("domain = mds.test")).split(
    "\n",
  );
  assert.ok(conf.includes("domain=mds.test,10.122.0.0/16,local"));
  assert.ok(conf.includes("expand-hosts"));

  const odd = renderDnsmasqConf(
    await configFrom(
      "domain = mds.test\nnet_prefix = 20\ngateway = 10.122.0.1",
    ),
  );
  assert.ok(
    odd.includes("domain=mds.test,10.122.0.0/20\nlocal=/mds.test/\n"),
    odd,
  );
});

Deno.test("renderDnsmasqOpts() routes the metadata address and the default route via the gateway (121 and 249)", async () => {
  const opts = renderDnsmasqOpts(await configFrom("use_dns = yes"));
  assert.equal(
    opts,
    [
      "option:router,10.122.0.1",
      "option:classless-static-route,169.254.169.254/32,10.122.0.1,0.0.0.0/0,10.122.0.1",
      "249,169.254.169.254/32,10.122.0.1,0.0.0.0/0,10.122.0.1",
      "option:dns-server,10.122.0.1",
      "option6:dns-server,[fd07:5fd4:b385::1]",
      "",
    ].join("\n"),
  );
});

Deno.test("renderDnsmasqOpts() advertises no DNS server without use_dns", async () => {
  const opts = renderDnsmasqOpts(await configFrom("use_dns = no")).split("\n");
  assert.ok(opts.includes("option:dns-server"));
  assert.ok(opts.includes("option6:dns-server"));
  assert.ok(!opts.some((line) => /^option6?:dns-server,/.test(line)));
});

Deno.test("renderDnsmasqOpts() gives only the default route when the metadata address is on the network", async () => {
  const opts = renderDnsmasqOpts(
    await configFrom("", "listen_address = 10.122.0.1"),
  );
  assert.ok(
    opts.includes("option:classless-static-route,0.0.0.0/0,10.122.0.1\n"),
    opts,
  );
  assert.ok(!opts.includes("/32"));
});

Deno.test("renderHostsEntry() lists the names in entry_order with prefix and domain", async () => {
  const config = await configFrom(
    "prefix = vm-\ndomain = mds.test\nentry_order = fqdn,prefix,base",
  );
  assert.equal(
    renderHostsEntry(config, instance()),
    "10.122.0.2 vm-web-01.mds.test vm-web-01 web-01\nfd07:5fd4:b385::a7a:2 vm-web-01.mds.test vm-web-01 web-01\n",
  );
  const plain = await configFrom("ipv6_prefix = no");
  assert.equal(renderHostsEntry(plain, instance()), "10.122.0.2 web-01\n");
});

Deno.test("renderDhcpHost() reserves the address for the MAC under the canonical name with the lease time", async () => {
  const config = await configFrom(
    "prefix = vm-\ndomain = mds.test\nentry_order = fqdn,base\nlease_len = 7200",
  );
  assert.equal(
    renderDhcpHost(config, instance({ mac: "52:54:00:AB:CD:EF" })),
    "52:54:00:ab:cd:ef,id:*,10.122.0.2,[fd07:5fd4:b385::a7a:2],vm-web-01,7200\n",
  );
  const ipv4Only = await configFrom("ipv6_prefix = no");
  assert.equal(renderDhcpHost(ipv4Only, instance()), "52:54:00:12:34:56,id:*,10.122.0.2,web-01,86400\n");
  const own = await configFrom("ipv6_prefix = 2001:db8:0:7::/64");
  assert.equal(
    renderDhcpHost(own, instance()),
    "52:54:00:12:34:56,id:*,10.122.0.2,[2001:db8:0:7::a7a:2],web-01,86400\n",
  );
});

Deno.test("renderDnsmasqConf() serves the IPv6 prefix by router advertisement and DHCPv6, reservations only, no default route", async () => {
  const conf = renderDnsmasqConf(await configFrom("lease_len = 7200")).split("\n");
  assert.ok(conf.includes("enable-ra"), conf.join("\n"));
  assert.ok(conf.includes("ra-param=br-mds,0,0"));
  assert.ok(conf.includes("dhcp-range=fd07:5fd4:b385::,static,64,7200"));
  // The same refusal of unknown clients covers DHCPv6.
  assert.ok(conf.includes("dhcp-ignore=tag:!known"));

  const off = renderDnsmasqConf(await configFrom("ipv6_prefix = no"));
  assert.ok(!/enable-ra|ra-param|::/.test(off), off);
});

Deno.test("[dnsmasq] ipv6_prefix refuses what is not a unicast /64", async () => {
  for (
    const [value, why] of [
      ["fd07:5fd4:b385::/48", /prefix length must be 64/],
      ["fd07:5fd4:b385::1/64", /host bits/],
      ["fe80::/64", /not a unicast prefix/],
      ["fd07::zz/64", /not an IPv6 address/],
      ["fd07:5fd4:b385::", /not an IPv6 prefix/],
    ] as const
  ) {
    await assert.rejects(configFrom(`ipv6_prefix = ${value}`), why, value);
  }
});

Deno.test("renderDhcpHost() refuses a MAC or address that could break the file", async () => {
  const config = await configFrom("");
  assert.throws(
    () =>
      renderDhcpHost(
        config,
        instance({ mac: "52:54:00:12:34:56\ndhcp-range=x" }),
      ),
    TypeError,
  );
  assert.throws(
    () => renderHostsEntry(config, instance({ ipv4: "10.122.0.2 evil" })),
    TypeError,
  );
});

Deno.test("recordFileName() is the UUID and refuses anything else", () => {
  assert.equal(
    recordFileName({ uuid: "6F1A3C2E-5B7D-4E8F-9A0B-1C2D3E4F5A6B" }),
    "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  );
  assert.throws(() => recordFileName({ uuid: "../../etc/passwd" }), TypeError);
  assert.throws(() => recordFileName({ uuid: "web01" }), TypeError);
});

Deno.test("writeHostRecord() writes one file per instance and leaves no temporary file", async () => {
  const { config, dir } = await tempConfig();
  try {
    const paths = dnsmasqPaths(config);
    const first = instance();
    const second = instance({
      uuid: "11111111-2222-4333-8444-555555555555",
      name: "db",
      mac: "52:54:00:00:00:02",
      ipv4: "10.122.0.3",
    });
    assert.deepEqual(await writeHostRecord(config, paths, first), {
      dhcp: "created",
      hosts: "created",
    });
    assert.deepEqual(await writeHostRecord(config, paths, second), {
      dhcp: "created",
      hosts: "created",
    });
    assert.deepEqual(await writeHostRecord(config, paths, first), {
      dhcp: "unchanged",
      hosts: "unchanged",
    });
    assert.deepEqual(
      await listDir(paths.dhcpHostsDir),
      [second.uuid, first.uuid].sort(),
    );
    assert.deepEqual(
      await listDir(paths.hostsDir),
      [second.uuid, first.uuid].sort(),
    );
    assert.equal(
      await Deno.readTextFile(join(paths.hostsDir, first.uuid)),
      "10.122.0.2 vm-web-01.mds.test vm-web-01 web-01\nfd07:5fd4:b385::a7a:2 vm-web-01.mds.test vm-web-01 web-01\n",
    );
    assert.deepEqual(
      await writeHostRecord(config, paths, { ...first, name: "web02" }),
      { dhcp: "changed", hosts: "changed" },
    );
    assert.deepEqual(await removeHostRecord(paths, first), {
      dhcp: true,
      hosts: true,
    });
    assert.deepEqual(await removeHostRecord(paths, first), {
      dhcp: false,
      hosts: false,
    });
    assert.deepEqual(await listDir(paths.dhcpHostsDir), [second.uuid]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rebuildHostRecords() writes every instance and removes stale records and temporary files", async () => {
  const { config, dir } = await tempConfig();
  try {
    const paths = dnsmasqPaths(config);
    const stale = "99999999-9999-4999-8999-999999999999";
    await Deno.writeTextFile(
      join(paths.dhcpHostsDir, stale),
      "52:54:00:99:99:99,id:*,10.122.0.99,gone,86400\n",
    );
    await Deno.writeTextFile(join(paths.hostsDir, stale), "10.122.0.99 gone\n");
    await Deno.writeTextFile(
      join(paths.hostsDir, `.${stale}.abcd1234.tmp`),
      "half",
    );
    const summary = await rebuildHostRecords(config, paths, [instance()]);
    assert.deepEqual(summary, {
      instances: 1,
      written: 2,
      unchanged: 0,
      removed: 3,
      dhcpChanged: true,
    });
    assert.deepEqual(await listDir(paths.dhcpHostsDir), [instance().uuid]);
    assert.deepEqual(await listDir(paths.hostsDir), [instance().uuid]);
    const again = await rebuildHostRecords(config, paths, [instance()]);
    assert.deepEqual(again, {
      instances: 1,
      written: 0,
      unchanged: 2,
      removed: 0,
      dhcpChanged: false,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("applyStoreEvent() reloads dnsmasq for a changed DHCP record, restarts it for a removed one, and leaves it alone for a new one", async () => {
  const { config, dir } = await tempConfig();
  try {
    const paths = dnsmasqPaths(config);
    const web = instance();
    const created = await applyStoreEvent(config, paths, {
      type: "upsert",
      instance: web,
      previous: null,
      replaced: null,
    });
    assert.deepEqual(created, { reload: null, restart: null });
    const same = await applyStoreEvent(config, paths, {
      type: "upsert",
      instance: web,
      previous: web,
      replaced: null,
    });
    assert.deepEqual(same, { reload: null, restart: null });
    const renamed = { ...web, name: "web02" };
    const changed = await applyStoreEvent(config, paths, {
      type: "upsert",
      instance: renamed,
      previous: web,
      replaced: null,
    });
    assert.ok(changed.reload !== null && changed.restart === null);
    const removed = await applyStoreEvent(config, paths, {
      type: "delete",
      instance: renamed,
    });
    assert.ok(removed.restart?.includes("web02"), "a removal must make dnsmasq forget the lease");
    assert.deepEqual(await listDir(paths.dhcpHostsDir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("applyStoreEvent() restarts dnsmasq when a redefined domain takes the address with a new MAC", async () => {
  const { config, dir } = await tempConfig();
  try {
    const paths = dnsmasqPaths(config);
    const old = instance();
    await applyStoreEvent(config, paths, {
      type: "upsert",
      instance: old,
      previous: null,
      replaced: null,
    });
    const redefined = instance({
      uuid: "22222222-3333-4444-8555-666666666666",
      mac: "52:54:00:aa:bb:cc",
    });
    const change = await applyStoreEvent(config, paths, {
      type: "upsert",
      instance: redefined,
      previous: null,
      replaced: old,
    });
    assert.ok(
      change.restart?.includes("52:54:00:aa:bb:cc"),
      JSON.stringify(change),
    );
    assert.deepEqual(await listDir(paths.dhcpHostsDir), [redefined.uuid]);
    assert.deepEqual(await listDir(paths.hostsDir), [redefined.uuid]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nextDelay() doubles the restart delay up to the maximum", () => {
  const delays = [DEFAULT_BACKOFF.initialDelayMs];
  while (delays.length < 8) {
    delays.push(nextDelay(delays.at(-1)!, DEFAULT_BACKOFF));
  }
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
});
