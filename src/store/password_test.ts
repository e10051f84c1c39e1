import assert from "node:assert/strict";
import { generatePassword, passwordProblem, sha512Crypt } from "./password.ts";

/** What OpenSSL's crypt(3) implementation gives, the reference the guest's /etc/shadow agrees with. */
async function opensslCrypt(password: string, salt: string): Promise<string | null> {
  try {
    const output = await new Deno.Command("openssl", {
      args: ["passwd", "-6", "-salt", salt, "-stdin"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const writer = output.stdin.getWriter();
    await writer.write(new TextEncoder().encode(password + "\n"));
    await writer.close();
    const result = await output.output();
    return new TextDecoder().decode(result.stdout).trim();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

Deno.test("sha512Crypt() gives the $6$ hash OpenSSL and glibc give, for short, long and non-ASCII passwords", async () => {
  const cases: [string, string][] = [
    ["pw", "saltsalt"],
    ["correct horse battery staple", "a1b2c3d4e5f6g7h8"],
    ["x".repeat(130), "s"],
    ["pässwörd ✓", "./AZaz09"],
  ];
  const reference = await opensslCrypt("pw", "saltsalt");
  if (reference === null && Deno.env.get("CI") === "true") throw new Error("openssl is not installed");
  // The one value known without a tool.
  assert.equal(
    sha512Crypt("pw", "saltsalt"),
    "$6$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/",
  );
  if (reference === null) return;
  for (const [password, salt] of cases) {
    assert.equal(sha512Crypt(password, salt), await opensslCrypt(password, salt), password);
  }
});

Deno.test("sha512Crypt() draws a new 16-digit salt each time", () => {
  const [a, b] = [sha512Crypt("same"), sha512Crypt("same")];
  assert.match(a, /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
  assert.notEqual(a, b);
});

Deno.test("generatePassword() gives 20 unambiguous letters and digits, different each time", () => {
  const passwords = new Set(Array.from({ length: 50 }, () => generatePassword()));
  assert.equal(passwords.size, 50);
  for (const password of passwords) assert.match(password, /^[a-km-zA-HJ-NP-Z2-9]{20}$/);
});

Deno.test("passwordProblem() refuses empty, overlong and multi-line passwords", () => {
  assert.equal(passwordProblem("fine one"), null);
  assert.match(passwordProblem("") ?? "", /empty/);
  assert.match(passwordProblem("a".repeat(257)) ?? "", /256/);
  assert.match(passwordProblem("a\nroot:x") ?? "", /line break/);
});
