/**
 * `verify_mac` (its default, auto) against a real impostor: mdserver runs in a network
 * namespace on the metadata address, a guest namespace on the other end of
 * a veth pair takes guest B's address from another MAC. Without verify_mac
 * the impostor reads B's metadata (the attack is real); with it, the
 * impostor gets a 403 with a one-line reason in the answer and the log,
 * while B from its own MAC (and A at its own address) get 200.
 */
import assert from "node:assert/strict";
import {
  becomeGuest,
  guestGet,
  METADATA,
  serveMetadataFrom,
  startServerIn,
  uploadDomains,
} from "./_guest_namespace.ts";
import { missingRequirement, NamespacePair, requirementTest } from "./_netns.ts";
import { type ServerProcess, writeProcessConfig } from "./_process.ts";

const NETWORK = { address: "10.231.0.0", prefix: 24, gateway: "10.231.0.1" };
const ALPHA = { name: "alpha", uuid: "a1a1a1a1-1111-4000-8000-00000000a1a1", mac: "52:54:00:aa:00:01" };
const BRAVO = { name: "bravo", uuid: "b2b2b2b2-2222-4000-8000-00000000b2b2", mac: "52:54:00:bb:00:02" };
const STRANGER_MAC = "02:00:00:00:00:99";

const reason = await missingRequirement({ root: true, tools: ["ip", "curl"] });

/** Runs a command in the server namespace and returns its output. */
async function inServer(pair: NamespacePair, command: string, args: string[]) {
  const result = await pair.run(pair.server, command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")}: ${result.code} ${result.stderr}`);
  return result.stdout;
}

requirementTest("verify_mac refuses a guest that uses another guest's address from its own MAC", reason, async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-verify-mac-" });
  const pair = await NamespacePair.create();
  let server: ServerProcess | null = null;
  try {
    await serveMetadataFrom(pair, NETWORK);
    const common = { network: NETWORK, listenAddress: METADATA, port: 80, interface: pair.serverIf };
    const off = await writeProcessConfig(dir, "off", { ...common, mdserver: "verify_mac = no" });
    // The default, verify_mac = auto: the neighbour table can be read here, so MACs are checked.
    const on = await writeProcessConfig(dir, "on", common);

    server = await startServerIn(pair, off.file, off.adminSocket);
    const { ips, ids } = await uploadDomains(off.adminSocket, [ALPHA, BRAVO]);
    const bravoIp = ips.bravo!;

    // Without verify_mac the address is all there is: A, posing as B, reads B's metadata.
    await becomeGuest(pair, NETWORK, ALPHA.mac, bravoIp);
    assert.deepEqual(await guestGet(pair, bravoIp, "/latest/meta-data/instance-id"), {
      status: 200,
      body: ids.bravo,
    });
    await server.stop();

    server = await startServerIn(pair, on.file, on.adminSocket);
    // The neighbour table is what mdserver checks; show it holds the impostor's MAC.
    await becomeGuest(pair, NETWORK, ALPHA.mac, bravoIp);
    const impostor = await guestGet(pair, bravoIp, "/latest/meta-data/instance-id");
    const table = await inServer(pair, "ip", ["-4", "neigh", "show", "to", bravoIp]);
    assert.match(table, new RegExp(`lladdr ${ALPHA.mac}`), table);
    assert.equal(impostor.status, 403, impostor.body);
    assert.equal(
      impostor.body,
      `refused ${bravoIp}: MAC ${ALPHA.mac} (on ${pair.serverIf}) is not ${BRAVO.mac}, the MAC of instance "bravo"\n`,
    );
    for (const path of ["/latest/user-data", "/openstack/latest/meta_data.json", "/nocloud/meta-data"]) {
      const answer = await guestGet(pair, bravoIp, path);
      assert.equal(answer.status, 403, `${path}: ${answer.body}`);
      assert.ok(!answer.body.includes(ids.bravo!) && !answer.body.includes(BRAVO.uuid), answer.body);
    }
    const token = await pair.run(pair.client, "curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--interface",
      bravoIp,
      "-X",
      "PUT",
      "-H",
      "x-aws-ec2-metadata-token-ttl-seconds: 60",
      `http://${METADATA}/latest/api/token`,
    ]);
    assert.equal(token.stdout, "403", "the impostor must not get a token either");

    await becomeGuest(pair, NETWORK, STRANGER_MAC, bravoIp);
    const stranger = await guestGet(pair, bravoIp, "/latest/meta-data/instance-id");
    assert.equal(stranger.status, 403, stranger.body);
    assert.match(stranger.body, new RegExp(`MAC ${STRANGER_MAC}`));

    // The real B from its own MAC, and A at its own address, are served.
    await becomeGuest(pair, NETWORK, BRAVO.mac, bravoIp);
    assert.deepEqual(await guestGet(pair, bravoIp, "/latest/meta-data/instance-id"), { status: 200, body: ids.bravo });
    await becomeGuest(pair, NETWORK, ALPHA.mac, ips.alpha!);
    assert.deepEqual(await guestGet(pair, ips.alpha!, "/latest/meta-data/instance-id"), {
      status: 200,
      body: ids.alpha,
    });

    const refusals = server.log().split("\n").filter((line) => line.includes("verify_mac: refused"));
    assert.ok(refusals.length >= 5, server.log());
    assert.match(refusals[0]!, new RegExp(`verify_mac: refused ${bravoIp.replaceAll(".", "\\.")}: MAC ${ALPHA.mac}`));
  } finally {
    if (server) {
      server.kill("SIGKILL");
      await server.exited;
    }
    await pair.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});
