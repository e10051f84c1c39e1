import assert from "node:assert/strict";
import { parseOptions } from "./options.ts";

Deno.test("e2e options: by default five guests, a datasource's two suites side by side, two at a time", () => {
  const options = parseOptions([]);
  assert.deepEqual(options.runs.map((run) => run.label), [
    "trixie-configdrive",
    "bookworm-nocloud",
    "trixie-nocloud",
    "bookworm-ec2",
    "trixie-ec2",
  ]);
  assert.equal(options.jobs, 2);
  assert.equal(options.hook, "qemu");
});

Deno.test("e2e options: --only, --jobs and --hook choose the guests, the parallelism and the hook's place", () => {
  const options = parseOptions(["--only", "trixie", "--jobs=1", "--hook", "qemu.d"]);
  assert.deepEqual(options.runs.map((run) => run.label), ["trixie-nocloud", "trixie-ec2", "trixie-configdrive"]);
  assert.equal(options.jobs, 1);
  assert.equal(options.hook, "qemu.d");
  assert.throws(() => parseOptions(["--jobs", "0"]), TypeError);
  assert.throws(() => parseOptions(["--hook", "qemu.x"]), TypeError);
  assert.throws(() => parseOptions(["--only", "sid"]), TypeError);
});
