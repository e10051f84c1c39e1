import assert from "node:assert/strict";
import { parse } from "yaml";
import { bootEventsVendorData, withBootEvents } from "./mod.ts";

const URL = "http://169.254.169.254/boot-events";
const REPORTING = { mdserver: { type: "webhook", endpoint: URL, timeout: 2, retries: 0 } };

Deno.test("without vendor-data of its own a guest gets the reporter alone, as cloud-config", () => {
  const text = withBootEvents(null, URL);
  assert.equal(text, bootEventsVendorData(URL));
  assert.ok(text.startsWith("#cloud-config\n"));
  assert.deepEqual(parse(text), { reporting: REPORTING });
});

Deno.test("a #cloud-config vendor-data gets the reporter appended; one with reporting: of its own is kept as it is", () => {
  const joined = withBootEvents("#cloud-config\nbootcmd:\n  - echo hi", URL);
  assert.deepEqual(parse(joined), { bootcmd: ["echo hi"], reporting: REPORTING });
  const own = "#cloud-config\nreporting:\n  mine:\n    type: log\n";
  assert.equal(withBootEvents(own, URL), own);
});

Deno.test("a script, or cloud-config YAML that is not one mapping, becomes a multipart with the reporter as its last part", () => {
  const script = withBootEvents("#!/bin/sh\necho hi\n", URL);
  assert.match(script, /^MIME-Version: 1\.0\nContent-Type: multipart\/mixed; boundary="/);
  assert.match(script, /Content-Type: text\/x-shellscript[^]*Content-Type: text\/cloud-config[^]*reporting:/);
  const list = withBootEvents("#cloud-config\n- a\n- b\n", URL);
  assert.match(list, /multipart\/mixed/);
});

Deno.test("a multipart vendor-data (a directory of parts) gets the reporter as one more part", () => {
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
  assert.match(joined, /filename="mdserver-boot-events\.yaml"\n\n#cloud-config\n/);
});
