/**
 * `[dnsmasq] manage = unit`: mdserver runs no dnsmasq and signals nothing;
 * it asks mdserver-dnsmasq-restart.path for a restart by writing one file
 * (at start and after a removal), while an upload only writes its two
 * record files, which dnsmasq reads by itself.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestService } from "./_harness.ts";
import { dig, missingRequirement, mustRun, poll, requirementTest, run } from "./_netns.ts";
import { ROOT } from "./_process.ts";

const WEB02_UUID = "7f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";
const WEB01 = { name: "web01", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", mac: "52:54:00:12:34:56" };

async function readOrNull(path: string): Promise<string | null> {
  return await Deno.readTextFile(path).catch(() => null);
}

Deno.test("manage = unit: start and removal write the restart request, an upload only its records", async () => {
  const t = await startTestService({ ini: "[dnsmasq]\nmanage = unit\n" });
  try {
    const request = t.service.dnsmasq!.paths.restartRequestFile;
    assert.equal(request, join(t.dir, "run", "dnsmasq.restart"));
    assert.equal(t.service.dnsmasq!.pid, null, "mdserver ran a dnsmasq");
    const atStart = await readOrNull(request);
    assert.match(atStart ?? "", /^\S+Z mdserver started\n$/);

    const registered = await t.register(WEB01);
    const record = await Deno.readTextFile(join(t.dir, "dnsmasq", "dhcp-hosts", WEB01.uuid));
    // The IPv6 address (ipv6_prefix, on by default) stands between the IPv4 one and the name.
    assert.match(
      record,
      new RegExp(`^${WEB01.mac},id:\\*,${registered.ipv4.replaceAll(".", "\\.")},(\\[[0-9a-f:]+\\],)?web01,`),
    );
    assert.equal(await readOrNull(request), atStart, "an upload asked for a restart");

    const removed = await t.adminFetch(`/v1/instances/${WEB01.name}`, { method: "DELETE" });
    assert.equal(removed.status, 200, await removed.text());
    let afterRemoval: string | null = atStart;
    for (let i = 0; i < 50 && afterRemoval === atStart; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      afterRemoval = await readOrNull(request);
    }
    assert.match(afterRemoval ?? "", /^\S+Z web01 removed\n$/);
    await assert.rejects(() => Deno.stat(join(t.dir, "dnsmasq", "dhcp-hosts", WEB01.uuid)), Deno.errors.NotFound);
  } finally {
    await t.close();
  }
});

const reason = await missingRequirement({ root: true, tools: ["ip", "setpriv", "dig", "/usr/sbin/dnsmasq"] });

/** The shipped unit's command, user and capabilities, with the test's configuration file. */
async function shippedDnsmasqUnit(confFile: string) {
  const unit = await Deno.readTextFile(join(ROOT, "systemd", "mdserver-dnsmasq.service"));
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, "m").exec(unit)?.[1] ?? "";
  const command = value("ExecStart").split(" ").map((arg) =>
    arg.startsWith("--conf-file=") ? `--conf-file=${confFile}` : arg
  );
  const caps = value("AmbientCapabilities").split(" ").map((cap) => `+${cap.replace(/^CAP_/, "").toLowerCase()}`)
    .join(",");
  return { command, caps, user: value("User") };
}

requirementTest(
  "the shipped dnsmasq unit's command, as an unprivileged user with the unit's capabilities, serves mdserver's records",
  reason,
  async () => {
    const netns = `mdserver-unit-${crypto.randomUUID().slice(0, 8)}`;
    await mustRun("ip", ["netns", "add", netns]);
    let dnsmasq: Deno.ChildProcess | null = null;
    const t = await startTestService({
      // IPv4 only: the test's loopback has no address of the IPv6 prefix (tests/dnsmasq_ipv6_test.ts covers that side).
      ini: "[dnsmasq]\nmanage = unit\nlisten_address = 127.0.0.1\ndns_port = 53\nuser = daemon\nipv6_prefix = no\n",
    });
    try {
      await Deno.chmod(t.dir, 0o755);
      await mustRun("ip", ["-n", netns, "link", "set", "lo", "up"]);
      const registered = await t.register(WEB01);
      const unit = await shippedDnsmasqUnit(join(t.dir, "dnsmasq", "mds.conf"));
      assert.equal(unit.user, "mdserver");
      assert.equal(unit.command[0], "/usr/sbin/dnsmasq");
      // As the unit runs it (its user is mdserver; here daemon, which this machine has).
      dnsmasq = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          netns,
          "setpriv",
          "--reuid=daemon",
          "--regid=daemon",
          "--clear-groups",
          "--no-new-privs",
          `--inh-caps=-all,${unit.caps}`,
          `--ambient-caps=-all,${unit.caps}`,
          `--bounding-set=-all,${unit.caps}`,
          ...unit.command,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const answer = await poll("dnsmasq answering", async () => {
        const reply = await dig("127.0.0.1", 53, "web01.test.internal", { netns });
        return reply.status === "NOERROR" ? reply : undefined;
      }, { timeoutMs: 10_000, intervalMs: 200 });
      assert.deepEqual(answer.answers, [registered.ipv4]);
      // An upload while it runs reaches DNS at once (hostsdir), without a restart request.
      const request = await Deno.readTextFile(t.service.dnsmasq!.paths.restartRequestFile);
      const second = await t.register({ ...WEB01, name: "web02", uuid: WEB02_UUID, mac: "52:54:00:12:34:57" });
      const answer2 = await poll("the new record answered", async () => {
        const reply = await dig("127.0.0.1", 53, "web02.test.internal", { netns });
        return reply.status === "NOERROR" ? reply : undefined;
      }, { timeoutMs: 5_000, intervalMs: 100 });
      assert.deepEqual(answer2.answers, [second.ipv4]);
      assert.equal(await Deno.readTextFile(t.service.dnsmasq!.paths.restartRequestFile), request);
      // No pid file: nothing is writable to the unit.
      await assert.rejects(() => Deno.stat(join(t.dir, "run", "mds.pid")), Deno.errors.NotFound);
    } finally {
      if (dnsmasq) {
        try {
          dnsmasq.kill("SIGTERM");
        } catch {
          // gone
        }
        await dnsmasq.status;
      }
      await t.close();
      await run("ip", ["netns", "del", netns]);
    }
  },
);
