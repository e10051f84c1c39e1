import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadConfig } from "./mod.ts";

/** Loads `[admin]` text over a metadata address and a managed network; the problems' messages, or [] when it loads. */
async function adminProblems(admin: string, beforeLoad?: (dir: string) => Promise<void>): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-admin-checks-" });
  try {
    await Deno.mkdir(join(dir, "userdata"));
    const file = join(dir, "mdserver.conf");
    await Deno.writeTextFile(
      file,
      "[mdserver]\nlisten_address = 127.0.0.1\nuserdata_dir = userdata\n" +
        "[dnsmasq]\nnet_address = 127.77.0.0\nnet_prefix = 16\ngateway = 127.77.0.1\n" +
        `[admin]\n${admin.replaceAll("@DIR@", dir)}\n`,
    );
    await beforeLoad?.(dir);
    await loadConfig(file);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((problem) => `[${problem.section}] ${problem.key}: ${problem.message}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("check-config refuses an admin address that is not loopback, is the metadata address or lies in the pool", async () => {
  for (
    const [address, reason] of [
      ["0.0.0.0", /not a loopback address/],
      ["10.122.0.1", /not a loopback address/],
      ["169.254.169.254", /not a loopback address/],
      ["127.0.0.1", /is the metadata address/],
      ["127.77.0.5", /lies in the managed network/],
      ["::", /not an IPv4 address or ::1/],
    ] as const
  ) {
    const problems = await adminProblems(`listen_address = ${address}`);
    assert.equal(problems.length, 1, `${address}: ${problems.join("; ")}`);
    assert.match(problems[0]!, /^\[admin\] listen_address: /);
    assert.match(problems[0]!, reason);
  }
  assert.deepEqual(await adminProblems("listen_address = 127.0.0.2"), []);
  assert.deepEqual(await adminProblems("listen_address = ::1"), []);
});

Deno.test("check-config refuses a socket path that exists and is not a socket, and accepts an absent one or a socket", async () => {
  const problems = await adminProblems("socket = @DIR@/mdserver.kv", async (dir) => {
    await Deno.writeTextFile(join(dir, "mdserver.kv"), "live data");
  });
  assert.equal(problems.length, 1, problems.join("; "));
  assert.match(problems[0]!, /^\[admin\] socket: ".*mdserver\.kv" exists and is not a socket/);
  const folder = await adminProblems("socket = @DIR@/userdata");
  assert.match(folder[0] ?? "", /exists and is not a socket/);
  assert.deepEqual(await adminProblems("socket = @DIR@/run/admin.sock"), []);
  assert.deepEqual(
    await adminProblems("socket = @DIR@/admin.sock", (dir) => {
      Deno.listen({ transport: "unix", path: join(dir, "admin.sock") }).close();
      return Promise.resolve();
    }),
    [],
  );
});
