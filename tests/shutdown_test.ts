/**
 * Stopping: on SIGTERM and SIGINT the service lets in-flight requests
 * finish, stops, closes KV and exits 0; what it acknowledged is kept.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { baseConfigText, domainXml } from "./_harness.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitForHealth(url: string) {
  for (let i = 0; i < 100; i++) {
    try {
      const response = await fetch(`${url}/health`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("mdserver did not come up");
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`${signal} lets an in-flight upload finish, then exits 0 with the upload kept`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "mdserver-shutdown-" });
    await Deno.mkdir(join(dir, "userdata"));
    const [metadataPort, adminPort] = [freePort(), freePort()];
    const text = baseConfigText(dir, { address: "127.77.0.0", prefix: 16, gateway: "127.77.0.1" })
      .replace("port = 0", `port = ${metadataPort}`)
      .replace(/(\[admin\][^[]*?port = )0/, `$1${adminPort}`);
    await Deno.writeTextFile(join(dir, "mdserver.conf"), text);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-P=test", "main.ts", "serve", "--config", join(dir, "mdserver.conf")],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const logs = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const seen: string[] = [];
    const collect = (async () => {
      while (true) {
        const { done, value } = await logs.read();
        if (done) return;
        seen.push(value);
      }
    })();
    try {
      const adminUrl = `http://127.0.0.1:${adminPort}`;
      await waitForHealth(adminUrl);
      // A slow client: the body arrives in two parts, the signal in between.
      const xml = domainXml({ name: "slow", uuid: "5a5a5a5a-1111-4222-8333-444455556666", mac: "52:54:00:5a:5a:5a" });
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          const bytes = new TextEncoder().encode(xml);
          controller.enqueue(bytes.slice(0, 100));
          await released;
          controller.enqueue(bytes.slice(100));
          controller.close();
        },
      });
      const upload = fetch(`${adminUrl}/v1/instances`, { method: "POST", body });
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.kill(signal);
      await new Promise((resolve) => setTimeout(resolve, 300));
      release();
      const response = await upload;
      assert.equal(response.status, 201, (await response.text()) + seen.join(""));
      const status = await child.status;
      await collect;
      const log = seen.join("");
      assert.equal(status.code, 0, log);
      assert.match(log, /shutting down/);
      assert.match(log, /stopped/);

      // The acknowledged upload is in the KV file.
      const kv = await Deno.openKv(join(dir, "mdserver.kv"));
      try {
        const uuid = (await kv.get<string>(["by_name", "slow"])).value;
        assert.equal(uuid, "5a5a5a5a-1111-4222-8333-444455556666");
      } finally {
        kv.close();
      }
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  });
}
