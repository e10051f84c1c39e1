/**
 * Address takeover with both address and MAC of a stopped guest, which no
 * MAC check can tell from the real guest, stopped at the guest's port by
 * libvirt's clean-traffic filter bound to the allocated address (`ctl
 * nwfilter`). libvirt's nwfilter cannot run in these namespaces, so its
 * effect on the port is applied as nftables rules on the port's ingress:
 * frames must come from the port's own MAC, IPv4 packets and ARP from the
 * filter's IP parameter; anything else is dropped, as clean-traffic's
 * no-mac-spoofing, no-ip-spoofing and no-arp-spoofing do.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cleanTrafficFilterref } from "../src/cli/ctl.ts";
import { domainXml } from "./_harness.ts";
import { missingRequirement, mustRun, NamespacePair, requirementTest } from "./_netns.ts";
import { type ServerProcess, spawnServer, waitUntil, writeProcessConfig } from "./_process.ts";

const NETWORK = { address: "10.232.0.0", prefix: 24, gateway: "10.232.0.1" };
const METADATA = "169.254.169.254";
const ALPHA = { name: "alpha", uuid: "a3a3a3a3-1111-4000-8000-00000000a3a3", mac: "52:54:00:ac:00:01" };
const BRAVO = { name: "bravo", uuid: "b4b4b4b4-2222-4000-8000-00000000b4b4", mac: "52:54:00:bc:00:02" };

const reason = await missingRequirement({ root: true, tools: ["ip", "curl", "nft"] });

async function becomeGuest(pair: NamespacePair, mac: string, ipv4: string) {
  const ip = (...args: string[]) => mustRun("ip", ["-n", pair.client, ...args]);
  await ip("link", "set", "dev", pair.clientIf, "down");
  await ip("addr", "flush", "dev", pair.clientIf);
  await ip("link", "set", "dev", pair.clientIf, "address", mac);
  await ip("addr", "add", `${ipv4}/${NETWORK.prefix}`, "dev", pair.clientIf);
  await ip("link", "set", "dev", pair.clientIf, "up");
  await ip("route", "replace", `${METADATA}/32`, "via", NETWORK.gateway);
  await ip("neigh", "flush", "dev", pair.clientIf);
  await mustRun("ip", ["-n", pair.server, "neigh", "flush", "dev", pair.serverIf]);
}

async function guestGet(pair: NamespacePair, ipv4: string, path: string) {
  const result = await pair.run(pair.client, "curl", [
    "-s",
    "--max-time",
    "3",
    "--interface",
    ipv4,
    "-w",
    "\n%{http_code}",
    `http://${METADATA}${path}`,
  ], { timeoutMs: 10_000 });
  const lines = result.stdout.split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

/** clean-traffic's effect for the port of a guest whose MAC and filter IP are given, as nftables rules. */
function cleanTrafficRules(port: string, mac: string, ipv4: string): string {
  return `table netdev clean_traffic {
  chain port_ingress {
    type filter hook ingress device "${port}" priority 0; policy accept;
    ether saddr != ${mac} drop
    ether type ip ip saddr != ${ipv4} drop
    ether type arp arp saddr ether != ${mac} drop
    ether type arp arp saddr ip != ${ipv4} drop
  }
}
`;
}

requirementTest(
  "clean-traffic with the allocated IP stops a guest that takes a stopped guest's address and MAC",
  reason,
  async () => {
    const pair = await NamespacePair.create();
    const dir = await Deno.makeTempDir({ prefix: "mdserver-clean-traffic-" });
    let server: ServerProcess | null = null;
    try {
      await mustRun("ip", [
        "-n",
        pair.server,
        "addr",
        "add",
        `${NETWORK.gateway}/${NETWORK.prefix}`,
        "dev",
        pair.serverIf,
      ]);
      await mustRun("ip", ["-n", pair.server, "addr", "add", `${METADATA}/32`, "dev", "lo"]);
      await mustRun("ip", ["-n", pair.server, "link", "set", "dev", pair.serverIf, "up"]);
      const config = await writeProcessConfig(dir, "ct", {
        network: NETWORK,
        listenAddress: METADATA,
        port: 80,
        interface: pair.serverIf,
      });
      server = spawnServer(config.file, { netns: pair.server });
      const up = server;
      await waitUntil(up, "mdserver in its namespace", async () => {
        const health = await pair.run(pair.server, "curl", [
          "-sf",
          "--max-time",
          "2",
          "--unix-socket",
          config.adminSocket,
          "http://localhost/health",
        ]);
        return health.code === 0;
      });
      const ips: Record<string, string> = {};
      const ids: Record<string, string> = {};
      for (const guest of [ALPHA, BRAVO]) {
        const file = join(dir, `${guest.name}.xml`);
        await Deno.writeTextFile(file, domainXml(guest));
        const answer = JSON.parse(
          (await pair.run(pair.server, "curl", [
            "-sf",
            "--data-binary",
            `@${file}`,
            "--unix-socket",
            config.adminSocket,
            "http://localhost/v1/instances",
          ]))
            .stdout,
        );
        ips[guest.name] = answer.ipv4;
        ids[guest.name] = answer.instance_id;
      }
      const alphaIp = ips.alpha!;
      const bravoIp = ips.bravo!;

      // Bravo is stopped; the port is alpha's. Taking bravo's address and MAC passes verify_mac: the attack is real.
      await becomeGuest(pair, BRAVO.mac, bravoIp);
      assert.deepEqual(await guestGet(pair, bravoIp, "/latest/meta-data/instance-id"), {
        status: 200,
        body: ids.bravo,
      });

      // The filter as the docs say, with the IP `mdserver nwfilter` prints for alpha, on alpha's port.
      const snippet = cleanTrafficFilterref(alphaIp);
      const filterIp = /<parameter name='IP' value='([\d.]+)'\/>/.exec(snippet)?.[1];
      assert.equal(filterIp, alphaIp);
      const rules = join(dir, "clean-traffic.nft");
      await Deno.writeTextFile(rules, cleanTrafficRules(pair.serverIf, ALPHA.mac, filterIp!));
      await mustRun("ip", ["netns", "exec", pair.server, "nft", "-f", rules]);

      await becomeGuest(pair, BRAVO.mac, bravoIp);
      const takeover = await guestGet(pair, bravoIp, "/latest/meta-data/instance-id");
      assert.equal(takeover.status, 0, `the impostor got an answer: ${takeover.status} ${takeover.body}`);
      // Bravo's address from alpha's own MAC is dropped too; alpha as itself is served.
      await becomeGuest(pair, ALPHA.mac, bravoIp);
      assert.equal((await guestGet(pair, bravoIp, "/latest/meta-data/instance-id")).status, 0);
      await becomeGuest(pair, ALPHA.mac, alphaIp);
      assert.deepEqual(await guestGet(pair, alphaIp, "/latest/meta-data/instance-id"), {
        status: 200,
        body: ids.alpha,
      });
    } finally {
      if (server) {
        server.kill("SIGKILL");
        await server.exited;
      }
      await pair.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
