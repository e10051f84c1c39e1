import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../_temp_dir.ts";
import { ConfigError } from "../config/mod.ts";
import { listen } from "../service/service.ts";
import { callAdmin } from "./admin_client.ts";
import { UsageError } from "./args.ts";
import { findCommand } from "./commands.ts";
import { errorLines } from "./messages.ts";

/** The error a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("it did not fail");
}

/** A client configuration naming an admin socket in a new folder. */
async function clientConfig(): Promise<{ file: string; socket: string }> {
  const dir = await tempDir("mdserver-messages-");
  const file = join(dir, "client.conf");
  const socket = join(dir, "admin.sock");
  await Deno.writeTextFile(file, `[admin]\nsocket = ${socket}\n`);
  return { file, socket };
}

Deno.test("a usage error is one error line and the command's synopsis", () => {
  assert.deepEqual(errorLines(new UsageError("show needs INSTANCE", findCommand("show")!), null), [
    "mdserver: error: show needs INSTANCE",
    "usage: mdserver show INSTANCE [options] (mdserver help show)",
  ]);
});

Deno.test("configuration errors are one line each with file, section and key", () => {
  const error = new ConfigError([
    { file: "/etc/a.conf", section: "dnsmasq", key: "net_prefix", message: "expected 8 to 30 (line 3)" },
    { file: "/etc/a.conf", section: "servce", key: null, message: "unknown section (line 5); did you mean [service]?" },
  ]);
  assert.deepEqual(errorLines(error, null), [
    "mdserver: error: /etc/a.conf: [dnsmasq] net_prefix: expected 8 to 30 (line 3)",
    "mdserver: error: /etc/a.conf: [servce]: unknown section (line 5); did you mean [service]?",
  ]);
});

Deno.test("a permission refusal names the permission set and the path to add", () => {
  const refusal = new Deno.errors.NotCapable(
    'Requires read access to "/srv/mdserver.conf", run again with the --allow-read flag',
  );
  assert.deepEqual(errorLines(refusal, findCommand("check-config")!), [
    'mdserver: error: the "check" permission set may not read "/srv/mdserver.conf": add "/srv/mdserver.conf" to ' +
    "permissions.check.read in deno.json (or use paths it allows)",
  ]);
});

Deno.test("a file error names the file once, without the OS error number", async () => {
  const error = await rejection(Deno.readTextFile("/nonexistent/db.json"));
  assert.deepEqual(errorLines(error, null), ['mdserver: error: "/nonexistent/db.json": no such file or directory']);
});

Deno.test("an unreachable admin API is named with its address and the way to check the service", async () => {
  const { file, socket } = await clientConfig();
  const lines = errorLines(await rejection(callAdmin({ configFile: file, path: "/v1/instances" })), null);
  assert.deepEqual(lines, [
    `mdserver: error: cannot reach mdserver's admin API at unix:${socket} (from ${file}): ` +
    "is the service running? (systemctl status mdserver)",
  ]);
});

Deno.test("an unknown instance is named, with no method, path or status code", async () => {
  const { file, socket } = await clientConfig();
  const server = Deno.serve(
    { path: socket, onListen: () => {} },
    () => new Response('{"error": "no instance \\"nosuch\\""}\n', { status: 404 }),
  );
  try {
    const error = await rejection(
      callAdmin({ configFile: file, path: "/v1/instances/nosuch", subject: 'instance "nosuch"' }),
    );
    assert.deepEqual(errorLines(error, null), ['mdserver: error: no instance "nosuch" (see: mdserver list)']);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a listener whose address is in use is named with its address, port and configuration key", () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = holder.addr.port;
    assert.throws(
      () =>
        listen(
          "the metadata listener",
          "mdserver",
          "127.0.0.1",
          port,
          () => Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, () => new Response()),
        ),
      (error: Error) => {
        assert.deepEqual(errorLines(error, null), [
          `mdserver: error: the metadata listener cannot listen on 127.0.0.1:${port}: the address is in use ` +
          `(another mdserver? see: ss -ltnp 'sport = :${port}'); stop it or change [mdserver] port`,
        ]);
        return true;
      },
    );
  } finally {
    holder.close();
  }
});
