/**
 * Names and metadata values that PyYAML (cloud-init's YAML reader) reads as
 * line breaks cannot add keys to a guest's cloud-config: a template in
 * md_server's form places them, and Debian's PyYAML parses what a guest
 * would receive, as cloud-init does.
 */
import assert from "node:assert/strict";
import { PYTHON } from "./_cloudinit.ts";
import { domainXml, startTestService, type TestService } from "./_harness.ts";
import { requireTool } from "./_requirements.ts";

const missing = await requireTool("PyYAML (Debian python3-yaml)", [
  PYTHON,
  "/usr/lib/python3/dist-packages/yaml/__init__.py",
]);

const TEMPLATE = "#cloud-config\nfqdn: {{name}}\nrole: <%= it.metadata.role %>\n";
const EXPECTED_KEYS = ["fqdn", "role"];
const PAYLOAD = "runcmd:\n  - touch /pwned";

// Every line break PyYAML knows (LF, CR, NEL, LINE and PARAGRAPH SEPARATOR), and the other Unicode ones (VT, FF).
const BREAKS: [string, string][] = [
  ["U+000A", "\n"],
  ["U+000D", "\r"],
  ["U+0085", "\u0085"],
  ["U+2028", "\u2028"],
  ["U+2029", "\u2029"],
  ["U+000B", "\u000b"],
  ["U+000C", "\u000c"],
];

const NS = 'xmlns:mdserver="https://github.com/sjjf/md_server"';

/** The top-level keys of a document as Debian's PyYAML safe loader reads it. */
async function pyyamlKeys(document: string): Promise<string[]> {
  const script = "import json, sys, yaml; print(json.dumps(sorted(yaml.safe_load(sys.stdin.read()))))";
  const child = new Deno.Command(PYTHON, { args: ["-c", script], stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(document));
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** Uploads a domain; when it is accepted, asserts that cloud-init would read no injected key in its user-data. */
async function uploadAndRead(t: TestService, n: number, name: string, role: string): Promise<number> {
  const mac = `52:54:00:0b:00:${n.toString(16).padStart(2, "0")}`;
  const uuid = `0000000b-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
  const metadata = `<mdserver:role ${NS}>${role}</mdserver:role>`;
  const response = await t.upload(domainXml({ name, uuid, mac, metadata }));
  const answer = await response.json().catch(() => null);
  if (response.ok) {
    const userData = await (await t.guestFetch(answer.ipv4, "/latest/user-data")).text();
    assert.deepEqual(await pyyamlKeys(userData), EXPECTED_KEYS, `user-data of ${JSON.stringify(name)}: ${userData}`);
  }
  return response.status;
}

Deno.test({
  name: "a domain name or metadata value with a line break PyYAML reads is refused and injects no cloud-config key",
  ignore: missing !== null,
  async fn() {
    const t = await startTestService({
      userdata: { "fqdn.yaml": TEMPLATE },
      ini: "[mdserver]\ndefault_template = fqdn.yaml\n",
    });
    try {
      // The template and the check itself: a plain name renders the two keys and nothing else.
      assert.equal(await uploadAndRead(t, 1, "plain01", "web"), 201);
      let n = 2;
      for (const [code, character] of BREAKS) {
        // XML would turn a raw CR into LF: character references keep every one as it is.
        const reference = `&#x${character.charCodeAt(0).toString(16)};`;
        const status = await uploadAndRead(t, n++, `web${reference}${PAYLOAD.replaceAll("\n", reference)}`, "web");
        assert.equal(status, 400, `domain name with ${code}`);
        // Metadata may hold several lines (LF, CR): a template places those itself; the others are refused.
        const valueStatus = await uploadAndRead(
          t,
          n++,
          `meta${n}`,
          `web${reference}${PAYLOAD.replaceAll("\n", reference)}`,
        );
        if (character === "\n" || character === "\r") continue;
        assert.equal(valueStatus, 400, `metadata value with ${code}`);
      }
    } finally {
      await t.close();
    }
  },
});
