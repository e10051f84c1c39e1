/**
 * Who reaches the admin API: its unix socket (mode 0660) by default, never
 * replacing anything but a stale socket; TCP only when configured, and then
 * only with the token; md_server's /instance-upload only when legacy_upload
 * allows it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../src/log/log.ts";
import { startService } from "../src/service/service.ts";
import { domainXml, startTestService } from "./_harness.ts";

const WEB01 = { name: "web01", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", mac: "52:54:00:12:34:56" };

Deno.test("the admin socket is mode 0660 and the TCP listener is off by default", async () => {
  const t = await startTestService();
  try {
    const info = await Deno.lstat(t.adminSocket);
    assert.ok(info.isSocket);
    assert.equal(info.mode! & 0o777, 0o660);
    assert.equal(t.service.adminPort, null);
    assert.equal((await t.adminFetch("/health")).status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("a socket path that is a file is refused at start and the file is kept", async () => {
  const t = await startTestService();
  const kvFile = join(t.dir, "live.kv");
  await Deno.writeTextFile(kvFile, "the live store");
  try {
    // As if the operator pointed [admin] socket at the KV file after check-config.
    const config = { ...t.config, admin: { ...t.config.admin, socket: kvFile } };
    const kv = await Deno.openKv(":memory:");
    try {
      await assert.rejects(
        () => startService(config, { log: silentLogger, kv, dnsmasq: false }),
        /exists and is not a socket; not replacing it/,
      );
    } finally {
      kv.close();
    }
    assert.equal(await Deno.readTextFile(kvFile), "the live store");
    // A socket in use by a running service is refused too, and keeps working.
    const again = { ...t.config, admin: { ...t.config.admin, socket: t.adminSocket } };
    const kv2 = await Deno.openKv(":memory:");
    try {
      await assert.rejects(
        () => startService(again, { log: silentLogger, kv: kv2, dnsmasq: false }),
        /is in use by another process/,
      );
    } finally {
      kv2.close();
    }
    assert.equal((await t.adminFetch("/health")).status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("the admin TCP listener answers only requests with its token", async () => {
  const t = await startTestService({ adminTcp: true });
  try {
    const url = `${t.adminUrl}/v1/instances`;
    for (
      const headers of [{} as Record<string, string>, { authorization: "Bearer wrong-token-wrong-token" }, {
        authorization: t.adminToken,
      }]
    ) {
      const response = await fetch(url, { headers });
      assert.equal(response.status, 401, JSON.stringify(headers));
      assert.match(await response.text(), /needs its token/);
    }
    const upload = await fetch(url, {
      method: "POST",
      body: domainXml(WEB01),
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    assert.equal(upload.status, 201, await upload.text());
  } finally {
    await t.close();
  }
});

Deno.test("the admin TCP listener does not start without a token", async () => {
  const t = await startTestService();
  try {
    const config = {
      ...t.config,
      admin: { ...t.config.admin, listenAddress: "127.0.0.2", port: 0, socket: null, tokenFile: join(t.dir, "none") },
    };
    const kv = await Deno.openKv(":memory:");
    try {
      await assert.rejects(
        () => startService(config, { log: silentLogger, kv, dnsmasq: false, env: () => undefined }),
        /needs a token \(install writes one\)/,
      );
    } finally {
      kv.close();
    }
  } finally {
    await t.close();
  }
});

Deno.test("legacy_upload = no turns /instance-upload off; the admin socket still takes uploads", async () => {
  const t = await startTestService({ ini: "[mdserver]\nlegacy_upload = no\n" });
  try {
    const refused = await t.upload(domainXml(WEB01));
    assert.equal(refused.status, 404);
    assert.match(await refused.text(), /legacy_upload = no/);
    assert.equal(await t.service.store.allocatedCount(), 0);
    const accepted = await t.adminFetch("/v1/instances", { method: "POST", body: domainXml(WEB01) });
    assert.equal(accepted.status, 201, await accepted.text());
  } finally {
    await t.close();
  }
});
