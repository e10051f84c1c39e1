/**
 * The password a guest posts itself, as cloudbase-init does when it sets a
 * random one: against the real service over its sockets, the guest side
 * from the instance's own address, the operator side through `mdserver
 * password`. The encryption is cloudbase-init's (the first SSH key of
 * meta_data.json, RSA PKCS#1 v1.5, base64), done with openssl; the operator
 * decrypts with the private key as with `nova get-password`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runCtl } from "../src/cli/ctl.ts";
import { MAX_POSTED_PASSWORD_BYTES } from "../src/store/mod.ts";
import { startTestService, type TestService, writeClientConfig } from "./_harness.ts";
import { missingRequirement, requirementTest } from "./_netns.ts";

const WEB = { name: "web01", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", mac: "52:54:00:12:34:56" };
const DB = { name: "db01", uuid: "7f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6c", mac: "52:54:00:12:34:57" };
/** cloudbase-init's version for the password route. */
const ROUTE = "/openstack/2013-04-04/password";

const reason = await missingRequirement({ tools: ["openssl", "ssh-keygen"] });

async function run(program: string, args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(program, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  if (stdin) await writer.write(stdin);
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0, `${program} ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  return output.stdout;
}

/** An RSA key pair as an operator has one: the private key in PEM (`ssh-keygen -m PEM`), the public key's line. */
async function rsaKey(dir: string): Promise<{ privateKey: string; publicLine: string }> {
  const privateKey = join(dir, "id_rsa");
  await run("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", "op@host", "-f", privateKey]);
  return { privateKey, publicLine: (await Deno.readTextFile(`${privateKey}.pub`)).trim() };
}

/** What cloudbase-init posts: the password encrypted with the instance's first SSH key, in base64. */
async function encryptAsCloudbaseInit(t: TestService, ipv4: string, password: string): Promise<string> {
  const meta = await (await t.guestFetch(ipv4, "/openstack/2013-04-04/meta_data.json")).json();
  const line = Object.values(meta.public_keys as Record<string, string>)[0]!;
  const publicFile = join(t.dir, "guest_key.pub");
  await Deno.writeTextFile(publicFile, `${line}\n`);
  const pem = join(t.dir, "guest_key.pem");
  await Deno.writeFile(pem, await run("ssh-keygen", ["-e", "-m", "PKCS8", "-f", publicFile]));
  const encrypted = await run(
    "openssl",
    ["pkeyutl", "-encrypt", "-pubin", "-inkey", pem, "-pkeyopt", "rsa_padding_mode:pkcs1"],
    new TextEncoder().encode(password),
  );
  return btoa(String.fromCharCode(...encrypted));
}

async function text(response: Promise<Response>): Promise<{ status: number; body: string }> {
  const answer = await response;
  return { status: answer.status, body: await answer.text() };
}

requirementTest(
  "a guest posts its encrypted password once, reads it back, a second post is a conflict, and the operator decrypts it",
  reason,
  async () => {
    const keyDir = await Deno.makeTempDir({ prefix: "mdserver-key-" });
    const key = await rsaKey(keyDir);
    const t = await startTestService({ ini: `[public-keys]\ndefault = ${key.publicLine}\n` });
    try {
      const web = await t.register(WEB);
      // cloudbase-init's is_password_set: a 404 would be an error to it; empty means "post yours".
      assert.deepEqual(await text(t.guestFetch(web.ipv4, ROUTE)), { status: 200, body: "" });
      const posted = await encryptAsCloudbaseInit(t, web.ipv4, "Rand0m-Windows-Pass!");
      assert.deepEqual(await text(t.guestFetch(web.ipv4, ROUTE, { method: "POST", body: posted })), {
        status: 200,
        body: "",
      });
      assert.deepEqual(await text(t.guestFetch(web.ipv4, "/openstack/latest/password")), { status: 200, body: posted });
      // Nova keeps the first: cloudbase-init takes the 409 as "already set".
      const again = await text(t.guestFetch(web.ipv4, ROUTE, { method: "POST", body: btoa("other") }));
      assert.equal(again.status, 409);
      // A restart (the hook's upload) keeps it.
      await t.register(WEB);
      assert.equal((await text(t.guestFetch(web.ipv4, ROUTE))).body, posted);

      const configFile = await writeClientConfig(t);
      const printed: string[] = [];
      const deps = { configFile, print: (line: string) => printed.push(line) };
      const show = new Map([["show-encrypted", true as const]]);
      assert.equal(await runCtl({ args: ["password", "web01"], options: show }, deps), 0);
      assert.deepEqual(printed, [posted]);
      const clear = await run(
        "openssl",
        ["pkeyutl", "-decrypt", "-inkey", key.privateKey],
        Uint8Array.from(atob(printed[0]!), (c) => c.charCodeAt(0)),
      );
      assert.equal(new TextDecoder().decode(clear), "Rand0m-Windows-Pass!");
      // `mdserver show` says when, never the text.
      const record = await (await t.adminFetch("/v1/instances/web01")).json();
      assert.match(record.posted_password.posted_at, /^\d{4}-\d\d-\d\dT/);
      assert.doesNotMatch(JSON.stringify(record), new RegExp(posted.slice(0, 40).replaceAll("+", "\\+")));

      printed.length = 0;
      assert.equal(await runCtl({ args: ["password", "web01"], options: new Map([["remove", true]]) }, deps), 0);
      assert.deepEqual(await text(t.guestFetch(web.ipv4, ROUTE)), { status: 200, body: "" });
      await assert.rejects(
        () => runCtl({ args: ["password", "web01"], options: show }, deps),
        { name: "AdminError", message: "web01 has posted no password" },
      );
      // Removed: the guest may post again.
      assert.equal((await text(t.guestFetch(web.ipv4, ROUTE, { method: "POST", body: posted }))).status, 200);
    } finally {
      await t.close();
      await Deno.remove(keyDir, { recursive: true });
    }
  },
);

Deno.test("a posted password over Nova's 1020 bytes is a 413, one not base64 a 400, and nothing is kept", async () => {
  const t = await startTestService();
  try {
    const web = await t.register(WEB);
    const over = "A".repeat(MAX_POSTED_PASSWORD_BYTES + 4);
    assert.equal((await text(t.guestFetch(web.ipv4, ROUTE, { method: "POST", body: over }))).status, 413);
    for (const body of ["", "not base64!", "\u001b[2Jabc="]) {
      assert.equal((await text(t.guestFetch(web.ipv4, ROUTE, { method: "POST", body }))).status, 400, body);
    }
    assert.deepEqual(await text(t.guestFetch(web.ipv4, ROUTE)), { status: 200, body: "" });
    // A 4096-bit key's post (684 characters) fits; so does the bound itself.
    const largest = "A".repeat(MAX_POSTED_PASSWORD_BYTES);
    assert.equal((await text(t.guestFetch(web.ipv4, ROUTE, { method: "POST", body: largest }))).status, 200);
    assert.equal((await text(t.guestFetch(web.ipv4, ROUTE))).body, largest);
  } finally {
    await t.close();
  }
});

Deno.test("a password is posted for the guest whose address sent it, never from a stranger's", async () => {
  const t = await startTestService();
  try {
    const web = await t.register(WEB);
    const db = await t.register(DB);
    const stranger = "127.77.0.250";
    const refused = await text(t.guestFetch(stranger, ROUTE, { method: "POST", body: btoa("x") }));
    assert.equal(refused.status, 404);
    assert.equal((await text(t.guestFetch(db.ipv4, ROUTE, { method: "POST", body: btoa("db's") }))).status, 200);
    assert.deepEqual(await text(t.guestFetch(web.ipv4, ROUTE)), { status: 200, body: "" });
    assert.equal((await text(t.guestFetch(db.ipv4, ROUTE))).body, btoa("db's"));
    const record = await (await t.adminFetch("/v1/instances/web01")).json();
    assert.equal(record.posted_password, null);
  } finally {
    await t.close();
  }
});

Deno.test("of posts racing, exactly one password is kept and the others are conflicts", async () => {
  const t = await startTestService();
  try {
    const web = await t.register(WEB);
    const bodies = Array.from({ length: 8 }, (_, i) => btoa(`password ${i}`));
    const answers = await Promise.all(
      bodies.map((body) => text(t.guestFetch(web.ipv4, ROUTE, { method: "POST", body }))),
    );
    assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 409, 409, 409, 409, 409, 409, 409]);
    const kept = (await text(t.guestFetch(web.ipv4, ROUTE))).body;
    assert.equal(kept, bodies[answers.findIndex((answer) => answer.status === 200)]);
  } finally {
    await t.close();
  }
});
