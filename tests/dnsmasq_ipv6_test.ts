/**
 * The managed network's IPv6 side with the real dnsmasq, in network
 * namespaces: a guest that asks for IPv6 the way ifupdown's `inet6 dhcp`
 * does (what cloud-init 25's fallback network configuration writes) gets a
 * router advertisement and its DHCPv6 address at once, instead of waiting
 * for a timeout; an unknown MAC gets no DHCPv6 answer.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_IPV6_PREFIX } from "../src/config/mod.ts";
import { parseIpv6Prefix } from "../src/ipam/ipv6.ts";
import { missingRequirement, mustRun, NamespacePair, poll, requirementTest, run } from "./_netns.ts";
import { domainXml } from "./_harness.ts";

const DNSMASQ = "/usr/sbin/dnsmasq";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PREFIX = "fd07:5fd4:b385";
/** What an answer "at once" means here: dnsmasq answers in well under a second. */
const AT_ONCE_MS = 5_000;

const reason = await missingRequirement({
  root: true,
  tools: [DNSMASQ, "ip", "curl", "rdisc6", "dhclient", "sysctl"],
});

/** The dhclient script: prints what DHCPv6 gave, changes nothing (never the host's resolv.conf). */
const DHCLIENT_SCRIPT = `#!/bin/sh
case "$reason" in
  BOUND6|REBOOT6|RENEW6) echo "bound address=$new_ip6_address dns=$new_dhcp6_name_servers" ;;
esac
exit 0
`;

/**
 * One DHCPv6 exchange as ifupdown's `inet6 dhcp` runs it (`dhclient -6`),
 * given up after `seconds` (dhclient's own `timeout`, 60 s by default).
 */
async function dhcpv6(pair: NamespacePair, dir: string, tag: string, seconds: number) {
  const started = performance.now();
  await Deno.writeTextFile(join(dir, `dhclient-${tag}.conf`), `timeout ${seconds};\n`);
  const result = await pair.run(pair.client, "dhclient", [
    "-6",
    "-1",
    "-v",
    "-cf",
    join(dir, `dhclient-${tag}.conf`),
    "-sf",
    join(dir, "dhclient.sh"),
    "-pf",
    join(dir, `dhclient-${tag}.pid`),
    "-lf",
    join(dir, `dhclient-${tag}.leases`),
    pair.clientIf,
  ], { timeoutMs: (seconds + 10) * 1000 });
  const ms = performance.now() - started;
  // Once bound, dhclient stays in the background to renew: stop it.
  const pid = await Deno.readTextFile(join(dir, `dhclient-${tag}.pid`)).catch(() => "");
  if (/^\d+\s*$/.test(pid)) await run("kill", [pid.trim()]);
  const bound = /^bound address=(\S*) dns=(.*)$/m.exec(result.stdout);
  return { ms, address: bound?.[1] ?? null, dns: bound?.[2]?.trim() ?? null, output: result.stderr };
}

/** Gives the client side a MAC (and the link-local address made from it), ready at once. */
async function setClientMac(pair: NamespacePair, mac: string) {
  const ip = (...args: string[]) => mustRun("ip", ["-n", pair.client, ...args]);
  await ip("link", "set", pair.clientIf, "down");
  await ip("link", "set", pair.clientIf, "address", mac);
  await mustRun("ip", [
    "netns",
    "exec",
    pair.client,
    "sysctl",
    "-q",
    "-w",
    `net.ipv6.conf.${pair.clientIf}.accept_dad=0`,
  ]);
  await ip("link", "set", pair.clientIf, "up");
  await poll("the client's link-local address", async () => {
    const text = await mustRun("ip", ["-n", pair.client, "-6", "addr", "show", "dev", pair.clientIf, "scope", "link"]);
    return /inet6 fe80::/.test(text) && !/tentative/.test(text) ? true : undefined;
  });
}

Deno.test("config/mds-network.xml carries the default IPv6 prefix's ::1 and asks libvirt for no DHCP of its own", async () => {
  const xml = await Deno.readTextFile(join(ROOT, "config/mds-network.xml"));
  const prefix = parseIpv6Prefix(DEFAULT_IPV6_PREFIX);
  assert.ok(typeof prefix !== "string");
  assert.ok(DEFAULT_IPV6_PREFIX.startsWith(`${PREFIX}::`));
  assert.match(xml, new RegExp(`<ip family="ipv6" address="${prefix.gateway}" prefix="64" />`));
  // No <dhcp> and DNS off: libvirt then starts neither dnsmasq nor radvd for the network.
  assert.doesNotMatch(xml.replace(/<!--[^]*?-->/g, ""), /<dhcp|<range|<host /);
  assert.match(xml, /<dns enable="no" \/>/);
});

requirementTest(
  "in network namespaces a guest that asks for IPv6 gets a router advertisement and its DHCPv6 address at once; an unknown MAC gets no DHCPv6 answer",
  reason,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "mdserver-dnsmasq6-" });
    await Deno.chmod(dir, 0o755);
    await Deno.mkdir(join(dir, "userdata"));
    const pair = await NamespacePair.create();
    let server: Deno.ChildProcess | null = null;
    const log: string[] = [];
    let logReader: Promise<void> = Promise.resolve();
    try {
      // The host side as config/mds-network.xml makes it: the gateway, the
      // metadata address and the prefix's ::1 on the bridge.
      const ip = (...args: string[]) => mustRun("ip", ["-n", pair.server, ...args]);
      await ip("addr", "add", "10.198.0.1/24", "dev", pair.serverIf);
      await ip("addr", "add", "169.254.169.254/32", "dev", pair.serverIf);
      await ip("addr", "add", `${PREFIX}::1/64`, "dev", pair.serverIf, "nodad");
      await ip("link", "set", pair.serverIf, "up");
      await Deno.writeTextFile(join(dir, "dhclient.sh"), DHCLIENT_SCRIPT, { mode: 0o755 });
      await Deno.writeTextFile(
        join(dir, "mdserver.conf"),
        `[mdserver]
listen_address = 169.254.169.254
port = 80
userdata_dir = userdata
kv_file = mdserver.kv

[admin]
socket = ${join(dir, "admin.sock")}

[dnsmasq]
net_address = 10.198.0.0
net_prefix = 24
gateway = 10.198.0.1
interface = ${pair.serverIf}
base_dir = dnsmasq
run_dir = run
user = nobody
lease_len = 600
manage = yes
binary = ${DNSMASQ}
ipv6_prefix = ${PREFIX}::/64
`,
      );
      const [cmd, args] = pair.exec(pair.server, Deno.execPath(), [
        "run",
        "-P=test",
        join(ROOT, "main.ts"),
        "serve",
        "--config",
        join(dir, "mdserver.conf"),
      ]);
      server = new Deno.Command(cmd, { args, cwd: ROOT, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
      const decode = (stream: ReadableStream<Uint8Array>) =>
        (async () => {
          for await (const chunk of stream.pipeThrough(new TextDecoderStream())) log.push(chunk);
        })();
      logReader = Promise.all([decode(server.stdout), decode(server.stderr)]).then(() => {});
      const admin = async (method: string, path: string, body?: string) => {
        const curl = ["-sS", "--max-time", "10", "-X", method];
        if (body !== undefined) {
          await Deno.writeTextFile(join(dir, "body.xml"), body);
          curl.push("--data-binary", `@${join(dir, "body.xml")}`);
        }
        curl.push("-w", "\n%{http_code}", "--unix-socket", join(dir, "admin.sock"), `http://localhost${path}`);
        const { stdout } = await pair.run(pair.server, "curl", curl);
        const end = stdout.lastIndexOf("\n");
        return { status: Number(stdout.slice(end + 1)), text: stdout.slice(0, end) };
      };
      await poll("mdserver's admin API", async () => (await admin("GET", "/health")).status === 200 || undefined, {
        timeoutMs: 30_000,
      });
      await poll(
        "dnsmasq's router advertisements",
        () => log.join("").includes("router advertisement on") || undefined,
        {
          timeoutMs: 10_000,
        },
      );

      const mac = "52:54:00:30:00:01";
      const created = await admin(
        "POST",
        "/v1/instances",
        domainXml({ name: "guest6", uuid: "6a7b8c9d-0e1f-4a2b-8c3d-4e5f60718293", mac }),
      );
      assert.equal(created.status, 201, created.text);
      const ipv4 = JSON.parse(created.text).ipv4 as string;
      const [a, b, c, d] = ipv4.split(".").map(Number) as [number, number, number, number];
      const expected = `${PREFIX}::${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
      await setClientMac(pair, mac);

      // Router advertisement: the prefix on-link, addresses from DHCPv6 (M),
      // no SLAAC, no default route through the host, no DNS server (use_dns = no).
      const raStarted = performance.now();
      const ra = await pair.run(pair.client, "rdisc6", ["-1", "-w", "1000", "-r", "3", pair.clientIf], {
        timeoutMs: 10_000,
      });
      const raMs = performance.now() - raStarted;
      assert.equal(ra.code, 0, `no router advertisement: ${ra.stdout}${ra.stderr}`);
      assert.ok(raMs < AT_ONCE_MS, `the router advertisement took ${raMs.toFixed(0)} ms`);
      assert.match(ra.stdout, /Stateful address conf\.\s*:\s*Yes/);
      assert.match(ra.stdout, new RegExp(`Prefix\\s*:\\s*${PREFIX}::/64`));
      assert.match(ra.stdout, /Autonomous address conf\.\s*:\s*No/);
      assert.match(ra.stdout, /Router lifetime\s*:\s*0 /);
      assert.doesNotMatch(ra.stdout, /Recursive DNS server/);

      // DHCPv6, as ifupdown runs it: the instance's address, derived from its IPv4 one.
      const bound = await dhcpv6(pair, dir, "known", 15);
      assert.equal(bound.address, expected, `no DHCPv6 lease in ${bound.ms.toFixed(0)} ms: ${bound.output}`);
      assert.ok(bound.ms < AT_ONCE_MS, `DHCPv6 took ${bound.ms.toFixed(0)} ms`);
      assert.equal(bound.dns, "");

      // A MAC without a reservation gets the advertisement (it is multicast)
      // but no DHCPv6 answer, like IPv4.
      await setClientMac(pair, "52:54:00:30:00:99");
      const unknown = await dhcpv6(pair, dir, "unknown", 4);
      assert.equal(unknown.address, null, "an unknown MAC got a DHCPv6 lease");
      assert.match(log.join(""), /DHCPSOLICIT\([^)]*\) \S+ ignored/);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- mdserver's log ---\n${log.join("").slice(-6000)}`, {
        cause: error,
      });
    } finally {
      if (server) {
        try {
          server.kill("SIGTERM");
        } catch {
          // exited already
        }
        await server.status;
      }
      await pair.cleanup();
      await logReader;
      await Deno.remove(dir, { recursive: true });
    }
  },
);
