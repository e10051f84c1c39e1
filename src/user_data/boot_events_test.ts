import assert from "node:assert/strict";
import { parse } from "yaml";
import { shellQuote } from "../io/mod.ts";
import { bootEventsVendorData, RUNTIME_CONFIG, runtimeConfigCommand, withBootEvents } from "./mod.ts";

const URL = "http://169.254.169.254/boot-events";
const REPORTING = { mdserver: { type: "webhook", endpoint: URL, timeout: 2, retries: 0 } };

/** Runs the hook's command with /bin/sh against `file` standing for the runtime configuration. */
async function runCommand(command: string, file: string): Promise<void> {
  const script = command.replaceAll(RUNTIME_CONFIG, file);
  const output = await new Deno.Command("/bin/sh", { args: ["-c", script], stderr: "piped" }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
}

Deno.test("without vendor-data of its own a guest gets a boothook that writes the runtime configuration, no cloud-config", () => {
  const text = withBootEvents(null, URL);
  assert.equal(text, bootEventsVendorData(URL));
  assert.ok(text.startsWith("#cloud-boothook\n#!/bin/sh\n"));
  assert.ok(text.includes(runtimeConfigCommand(URL)));
  assert.ok(!text.includes("#cloud-config"));
});

Deno.test("the hook's command appends the reporter once, after what ds-identify wrote, and quotes the URL", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-boot-events-" });
  try {
    const file = `${dir}/cloud.cfg`;
    await Deno.writeTextFile(file, "datasource_list: [ NoCloud, None ]");
    const odd = "http://169.254.169.254/boot-events?a='b'&c=$(touch x)`y` z";
    await runCommand(runtimeConfigCommand(odd), file);
    await runCommand(runtimeConfigCommand(odd), file);
    const text = await Deno.readTextFile(file);
    assert.deepEqual(parse(text), {
      datasource_list: ["NoCloud", "None"],
      reporting: { mdserver: { ...REPORTING.mdserver, endpoint: odd } },
    });
    assert.equal(text.match(/^reporting:/gm)?.length, 1);
    assert.deepEqual([...Deno.readDirSync(dir)].map((entry) => entry.name), ["cloud.cfg"]);
    // No file yet: the command creates it.
    await Deno.remove(file);
    await runCommand(runtimeConfigCommand(URL), file);
    assert.deepEqual(parse(await Deno.readTextFile(file)), { reporting: REPORTING });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shellQuote makes one word of anything", () => {
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

Deno.test("the operator's vendor-data, cloud-config or a script, becomes a multipart with the hook as its last part", () => {
  const joined = withBootEvents("#cloud-config\nbootcmd:\n  - echo hi", URL);
  assert.match(joined, /^MIME-Version: 1\.0\nContent-Type: multipart\/mixed; boundary="/);
  assert.match(joined, /Content-Type: text\/cloud-config[^]*bootcmd:[^]*Content-Type: text\/cloud-boothook[^]*/);
  assert.ok(!/^reporting:/m.test(joined), "no reporter in the instance's cloud-config");
  const script = withBootEvents("#!/bin/sh\necho hi\n", URL);
  assert.match(script, /Content-Type: text\/x-shellscript[^]*Content-Type: text\/cloud-boothook/);
});

Deno.test("a multipart vendor-data (a directory of parts) gets the hook as one more part", () => {
  const mime = [
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="XYZ"',
    "",
    "--XYZ",
    "Content-Type: text/x-shellscript",
    "",
    "#!/bin/sh",
    "--XYZ--",
    "",
  ].join("\n");
  const joined = withBootEvents(mime, URL);
  assert.equal(joined.split("--XYZ\n").length, 3);
  assert.ok(joined.trimEnd().endsWith("--XYZ--"));
  assert.match(joined, /filename="mdserver-boot-events\.sh"\n\n#cloud-boothook\n#!\/bin\/sh\n/);
});
