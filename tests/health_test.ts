import assert from "node:assert/strict";
import { join } from "node:path";
import { startTestService, type TestService } from "./_harness.ts";
import { poll } from "./_netns.ts";

async function health(service: TestService) {
  const response = await service.adminFetch("/health");
  return { status: response.status, body: await response.json() };
}

Deno.test("/health reports a managed dnsmasq running, and answers 503 while it is down (crash loop)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-health-" });
  try {
    // A stand-in dnsmasq that stays up, and one that exits at once (as a dnsmasq refusing its configuration).
    const steady = join(dir, "steady-dnsmasq");
    await Deno.writeTextFile(steady, "#!/bin/sh\nexec sleep 30\n", { mode: 0o755 });
    const crashing = join(dir, "crashing-dnsmasq");
    await Deno.writeTextFile(crashing, "#!/bin/sh\nexit 3\n", { mode: 0o755 });

    const up = await startTestService({ ini: `[dnsmasq]\nmanage = yes\nbinary = ${steady}\n` });
    try {
      const answer = await poll("dnsmasq running", async () => {
        const result = await health(up);
        return result.body.dnsmasq.state === "running" ? result : undefined;
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.status, "ok");
    } finally {
      await up.close();
    }

    const down = await startTestService({ ini: `[dnsmasq]\nmanage = yes\nbinary = ${crashing}\n` });
    try {
      const answer = await poll("dnsmasq down", async () => {
        const result = await health(down);
        return result.status === 503 ? result : undefined;
      });
      assert.equal(answer.body.status, "dnsmasq down");
      assert.equal(answer.body.dnsmasq.state, "down");
    } finally {
      await down.close();
    }

    const external = await startTestService();
    try {
      assert.deepEqual(await health(external), {
        status: 200,
        body: {
          status: "ok",
          instances: 0,
          dnsmasq: { state: "not managed" },
          store: { backend: "kv", reachable: true, last_contact: null },
        },
      });
    } finally {
      await external.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
