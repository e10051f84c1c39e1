/**
 * A metadata address that is not there yet (the libvirt bridge comes up
 * after mdserver): the service waits for it, saying once which address it
 * waits for, and serves as soon as it appears; a stop during the wait is a
 * clean exit.
 */

import assert from "node:assert/strict";
import { missingRequirement, mustRun, poll, requirementTest, run } from "./_netns.ts";
import { spawnServer, writeProcessConfig } from "./_process.ts";

const reason = await missingRequirement({ root: true, tools: ["ip", "curl"] });
const METADATA = "169.254.169.254";

async function withNamespace(body: (netns: string, dir: string) => Promise<void>) {
  const netns = `mdserver-late-${crypto.randomUUID().slice(0, 8)}`;
  const dir = await Deno.makeTempDir({ prefix: "mdserver-late-" });
  await mustRun("ip", ["netns", "add", netns]);
  try {
    await mustRun("ip", ["-n", netns, "link", "set", "lo", "up"]);
    await body(netns, dir);
  } finally {
    await run("ip", ["netns", "del", netns]);
    await Deno.remove(dir, { recursive: true });
  }
}

function waitingLines(log: string): string[] {
  return log.split("\n").filter((line) => line.includes("waiting for"));
}

requirementTest("the service waits for a missing listen address and serves once it is added", reason, async () => {
  await withNamespace(async (netns, dir) => {
    const config = await writeProcessConfig(dir, "late", {
      network: { address: "10.98.0.0", prefix: 24, gateway: "10.98.0.1" },
      listenAddress: METADATA,
      port: 80,
    });
    const server = spawnServer(config.file, { netns });
    try {
      await poll("the waiting line", () => waitingLines(server.log()).length > 0 ? true : undefined, {
        timeoutMs: 30_000,
      }).catch((error) => {
        throw new Error(`${error.message}\n${server.log()}`);
      });
      // Still waiting, not exited, and said so once.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const lines = waitingLines(server.log());
      assert.equal(lines.length, 1, server.log());
      assert.match(lines[0]!, /metadata: waiting for 169\.254\.169\.254:80 to appear on an interface/);
      const early = await run("ip", ["netns", "exec", netns, "curl", "-s", "--max-time", "1", `http://${METADATA}/`]);
      assert.notEqual(early.code, 0, "answered before the address was there");

      await mustRun("ip", ["-n", netns, "addr", "add", `${METADATA}/32`, "dev", "lo"]);
      const answer = await poll("an answer on the new address", async () => {
        const result = await run("ip", [
          "netns",
          "exec",
          netns,
          "curl",
          "-s",
          "--max-time",
          "2",
          "-w",
          "\n%{http_code}",
          `http://${METADATA}/latest/meta-data/instance-id`,
        ]);
        return result.code === 0 ? result.stdout : undefined;
      }, { timeoutMs: 10_000, intervalMs: 200 });
      // A host address is no guest: the answer is mdserver's own 404.
      assert.match(answer, /unknown client .*\n404$/s);
      assert.match(server.log(), /169\.254\.169\.254:80 is there now/);
      assert.match(server.log(), /metadata listening on http:\/\/169\.254\.169\.254\//);
      assert.equal((await server.stop()).code, 0, server.log());
    } finally {
      await server.stop();
    }
  });
});

requirementTest("a stop while waiting for the listen address exits 0", reason, async () => {
  await withNamespace(async (netns, dir) => {
    const config = await writeProcessConfig(dir, "late", {
      network: { address: "10.98.0.0", prefix: 24, gateway: "10.98.0.1" },
      listenAddress: METADATA,
      port: 80,
    });
    const server = spawnServer(config.file, { netns });
    try {
      await poll("the waiting line", () => waitingLines(server.log()).length > 0 ? true : undefined, {
        timeoutMs: 30_000,
      });
      const status = await server.stop();
      assert.equal(status.code, 0, server.log());
      assert.match(server.log(), /shutting down on SIGTERM/);
    } finally {
      await server.stop();
    }
  });
});
