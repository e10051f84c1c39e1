import assert from "node:assert/strict";
import { missingRequirement, mustRun, requirementTest, run } from "../../tests/_netns.ts";
import { ipNeighLookup, parseIpNeighJson } from "./neighbours.ts";

const TABLE = JSON.stringify([
  { dst: "10.122.0.5", dev: "br-mds", lladdr: "52:54:00:AA:BB:CC", state: ["REACHABLE"] },
  { dst: "10.122.0.6", dev: "br-mds", state: ["FAILED"] },
  { dst: "10.122.0.7", dev: "br-mds", lladdr: "52:54:00:00:00:07", state: ["STALE"] },
  "garbage",
  { dst: "10.122.0.5", dev: "eth1", lladdr: "02:00:00:00:00:01", state: ["DELAY"] },
]);

Deno.test("parseIpNeighJson() keeps entries with a MAC, lower-cased, and drops unresolved ones", () => {
  assert.deepEqual(parseIpNeighJson(TABLE), [
    { ipv4: "10.122.0.5", mac: "52:54:00:aa:bb:cc", device: "br-mds" },
    { ipv4: "10.122.0.7", mac: "52:54:00:00:00:07", device: "br-mds" },
    { ipv4: "10.122.0.5", mac: "02:00:00:00:00:01", device: "eth1" },
  ]);
  assert.deepEqual(parseIpNeighJson(""), []);
  assert.deepEqual(parseIpNeighJson("[]\n"), []);
  assert.throws(() => parseIpNeighJson("{}"), SyntaxError);
  assert.throws(() => parseIpNeighJson("Error"), SyntaxError);
});

const kernelReason = await missingRequirement({ root: true, tools: ["ip"] });

requirementTest(
  "ipNeighLookup() reads the kernel's neighbour table: the MAC of a known address, nothing for others",
  kernelReason,
  async () => {
    // A namespace of its own, with one permanent entry, read through the real `ip`.
    const ns = `mdsn-${crypto.randomUUID().slice(0, 8)}`;
    const dir = await Deno.makeTempDir({ prefix: "mdserver-neigh-" });
    await mustRun("ip", ["netns", "add", ns]);
    try {
      const ip = (...args: string[]) => mustRun("ip", ["-n", ns, ...args]);
      await ip("link", "add", "mds0", "type", "veth", "peer", "name", "mds1");
      await ip("link", "set", "mds0", "up");
      await ip("addr", "add", "10.9.7.1/24", "dev", "mds0");
      await ip("neigh", "add", "10.9.7.5", "lladdr", "52:54:00:AB:CD:EF", "dev", "mds0", "nud", "permanent");
      const inNamespace = `${dir}/ip`;
      await Deno.writeTextFile(inNamespace, `#!/bin/sh\nexec ip -n ${ns} "$@"\n`);
      await Deno.chmod(inNamespace, 0o755);
      const lookup = ipNeighLookup(inNamespace);
      assert.deepEqual(await lookup("10.9.7.5"), [{ ipv4: "10.9.7.5", mac: "52:54:00:ab:cd:ef", device: "mds0" }]);
      assert.deepEqual(await lookup("10.9.7.6"), []);
      assert.deepEqual(await lookup("not-an-address; rm -rf /"), []);
    } finally {
      await run("ip", ["netns", "delete", ns]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("ipNeighLookup() shares reads among concurrent callers, never one that began before a caller asked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-neigh-" });
  try {
    const table = (mac: string) => JSON.stringify([{ dst: "10.9.0.5", dev: "br-mds", lladdr: mac }]);
    await Deno.writeTextFile(`${dir}/table`, table("52:54:00:00:00:01"));
    // Stands in for `ip`: prints the table as it is when called, then takes a while to exit.
    const fakeIp = `${dir}/ip`;
    await Deno.writeTextFile(fakeIp, `#!/bin/sh\necho call >> ${dir}/calls\ncat ${dir}/table\nsleep 0.2\n`);
    await Deno.chmod(fakeIp, 0o755);
    const calls = async () => (await Deno.readTextFile(`${dir}/calls`)).split("\n").filter(Boolean).length;
    const lookup = ipNeighLookup(fakeIp);

    const first = lookup("10.9.0.5");
    await new Promise((resolve) => setTimeout(resolve, 100)); // the first read has printed its table
    await Deno.writeTextFile(`${dir}/table`, table("02:00:00:00:00:02"));
    const later = await Promise.all(Array.from({ length: 50 }, () => lookup("10.9.0.5")));
    assert.deepEqual((await first).map((entry) => entry.mac), ["52:54:00:00:00:01"]);
    for (const entries of later) assert.deepEqual(entries.map((entry) => entry.mac), ["02:00:00:00:00:02"]);
    assert.equal(await calls(), 2);
    assert.deepEqual(await lookup("10.9.0.6"), []);
    assert.equal(await calls(), 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
