import assert from "node:assert/strict";
import { checkToken, createTokenSigner, issueToken, parseTokenTtl } from "./tokens.ts";

const guest = {
  uuid: "0b6c1a4e-7f8d-4a53-9a3e-111111111111",
  address: "10.122.0.5",
};

Deno.test("issueToken() makes a token that checkToken() accepts for the same guest", async () => {
  const signer = await createTokenSigner();
  const token = await issueToken(signer, guest, 21600);
  assert.match(token, /^[A-Za-z0-9._-]+$/);
  assert.equal(await checkToken(signer, token, guest), "valid");
});

Deno.test("checkToken() refuses a token issued to another instance or another address", async () => {
  const signer = await createTokenSigner();
  const token = await issueToken(signer, guest, 60);
  assert.equal(
    await checkToken(signer, token, { ...guest, address: "10.122.0.6" }),
    "invalid",
  );
  assert.equal(
    await checkToken(signer, token, {
      ...guest,
      uuid: "0b6c1a4e-7f8d-4a53-9a3e-222222222222",
    }),
    "invalid",
  );
});

Deno.test("checkToken() says expired once the TTL has passed", async () => {
  let now = 1_700_000_000_000;
  const signer = await createTokenSigner({ now: () => now });
  const token = await issueToken(signer, guest, 10);
  now += 9_999;
  assert.equal(await checkToken(signer, token, guest), "valid");
  now += 1;
  assert.equal(await checkToken(signer, token, guest), "expired");
});

Deno.test("checkToken() refuses tokens from another key (a previous run) and tampered tokens", async () => {
  const before = await createTokenSigner();
  const after = await createTokenSigner();
  const token = await issueToken(before, guest, 60);
  assert.equal(await checkToken(after, token, guest), "invalid");
  const [version, expiry, nonce, mac] = token.split(".");
  const longer = `${version}.${Number(expiry) + 3600}.${nonce}.${mac}`;
  assert.equal(await checkToken(before, longer, guest), "invalid");
  for (
    const junk of [
      "",
      "v1",
      "x".repeat(300),
      `${token}x`,
      token.replace(/.$/, "!"),
    ]
  ) {
    assert.equal(await checkToken(before, junk, guest), "invalid", junk);
  }
});

Deno.test("parseTokenTtl() accepts 1 to 21600 and nothing else", () => {
  assert.equal(parseTokenTtl("1"), 1);
  assert.equal(parseTokenTtl("21600"), 21600);
  assert.equal(parseTokenTtl(" 300 "), 300);
  for (
    const bad of [null, "", "0", "21601", "-5", "1.5", "abc", "1e3", "0x10"]
  ) {
    assert.throws(() => parseTokenTtl(bad), RangeError, String(bad));
  }
});

Deno.test("a token of TTL 1 is valid for the whole second after issue, whatever the fraction of the clock", async () => {
  for (const issuedAt of [5_000, 5_000.2, 5_500, 5_999.9]) {
    let now = issuedAt;
    const signer = await createTokenSigner({ now: () => now });
    const token = await issueToken(signer, guest, 1);
    now = issuedAt + 500;
    assert.equal(await checkToken(signer, token, guest), "valid", `issued at ${issuedAt}, 0.5 s later`);
    now = issuedAt + 999.9;
    assert.equal(await checkToken(signer, token, guest), "valid", `issued at ${issuedAt}, 0.9999 s later`);
    now = issuedAt + 1001;
    assert.equal(await checkToken(signer, token, guest), "expired", `issued at ${issuedAt}, 1.001 s later`);
  }
});

Deno.test("the default clock is monotonic: setting the wall clock back does not extend a token", async () => {
  const signer = await createTokenSigner();
  const token = await issueToken(signer, guest, 1);
  const realNow = Date.now;
  // The wall clock set back an hour while the token lives.
  Date.now = () => realNow() - 3_600_000;
  try {
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    assert.equal(await checkToken(signer, token, guest), "expired");
  } finally {
    Date.now = realNow;
  }
});
