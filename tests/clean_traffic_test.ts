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
import {
  becomeGuest,
  guestGet,
  METADATA,
  serveMetadataFrom,
  startServerIn,
  uploadDomains,
} from "./_guest_namespace.ts";
import { missingRequirement, mustRun, NamespacePair, requirementTest } from "./_netns.ts";
import { type ServerProcess, writeProcessConfig } from "./_process.ts";

const NETWORK = { address: "10.232.0.0", prefix: 24, gateway: "10.232.0.1" };
const ALPHA = { name: "alpha", uuid: "a3a3a3a3-1111-4000-8000-00000000a3a3", mac: "52:54:00:ac:00:01" };
const BRAVO = { name: "bravo", uuid: "b4b4b4b4-2222-4000-8000-00000000b4b4", mac: "52:54:00:bc:00:02" };
/** A dropped request is seen as no answer within this long. */
const DROPPED_AFTER_S = 3;

const reason = await missingRequirement({ root: true, tools: ["ip", "curl", "nft"] });

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
      await serveMetadataFrom(pair, NETWORK);
      const config = await writeProcessConfig(dir, "ct", {
        network: NETWORK,
        listenAddress: METADATA,
        port: 80,
        interface: pair.serverIf,
      });
      server = await startServerIn(pair, config.file, config.adminSocket);
      const { ips, ids } = await uploadDomains(config.adminSocket, [ALPHA, BRAVO]);
      const alphaIp = ips.alpha!;
      const bravoIp = ips.bravo!;

      // Bravo is stopped; the port is alpha's. Taking bravo's address and MAC passes verify_mac: the attack is real.
      await becomeGuest(pair, NETWORK, BRAVO.mac, bravoIp);
      assert.deepEqual(await guestGet(pair, bravoIp, "/latest/meta-data/instance-id", DROPPED_AFTER_S), {
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

      await becomeGuest(pair, NETWORK, BRAVO.mac, bravoIp);
      const takeover = await guestGet(pair, bravoIp, "/latest/meta-data/instance-id", DROPPED_AFTER_S);
      assert.equal(takeover.status, 0, `the impostor got an answer: ${takeover.status} ${takeover.body}`);
      // Bravo's address from alpha's own MAC is dropped too; alpha as itself is served.
      await becomeGuest(pair, NETWORK, ALPHA.mac, bravoIp);
      assert.equal((await guestGet(pair, bravoIp, "/latest/meta-data/instance-id", DROPPED_AFTER_S)).status, 0);
      await becomeGuest(pair, NETWORK, ALPHA.mac, alphaIp);
      assert.deepEqual(await guestGet(pair, alphaIp, "/latest/meta-data/instance-id", DROPPED_AFTER_S), {
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
