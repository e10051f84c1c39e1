import assert from "node:assert/strict";
import { join } from "node:path";
import { TemplateError, TemplateRenderer } from "./mod.ts";
import { data, parseMultipart, symlink, WEB01, withDir, writeFiles } from "./_test_helpers.ts";

// ------------------------------------------------------------- multipart

Deno.test("renderUserData() assembles a directory of parts into MIME multipart", async () => {
  await withDir(async (dir, source) => {
    const parts = join(dir, "web01");
    await Deno.mkdir(parts);
    await writeFiles(parts, {
      "10-base.yaml": "hostname: {{hostname}}\n",
      "20-setup.sh": "echo <%= it.ipv4 %>\n",
      "30-hook": "#cloud-boothook\necho early\n",
      "40-more": "#cloud-config\nfqdn: {{fqdn}}\n",
      "50-script": "#!/usr/bin/python3\nprint('hi')\n",
      "60-include": "#include\nhttp://example.com/x\n",
      "70-motd.sh": "#!/bin/sh\necho 'Grüße von {{hostname}} ☃'\n",
      ".hidden.yaml": "ignored: {{nope}}\n",
      "10-base.yaml~": "ignored: {{nope}}\n",
    });
    await Deno.mkdir(join(parts, "80-subdir"));

    const result = await new TemplateRenderer(source).renderUserData(
      WEB01,
      data(),
    );
    assert.equal(result.template, parts);
    assert.match(
      result.contentType,
      /^multipart\/mixed; boundary=mdserver-[0-9a-f]{16}$/,
    );
    const parsed = parseMultipart(result);
    assert.deepEqual(
      parsed.map((part) => [
        part.headers.get("content-type"),
        part.headers.get("content-disposition"),
        part.headers.get("content-transfer-encoding"),
        part.content,
      ]),
      [
        [
          'text/cloud-config; charset="utf-8"',
          'attachment; filename="10-base.yaml"',
          "7bit",
          "hostname: web01\n",
        ],
        [
          'text/x-shellscript; charset="utf-8"',
          'attachment; filename="20-setup.sh"',
          "7bit",
          "#!/bin/sh\necho 10.122.0.15\n",
        ],
        [
          'text/cloud-boothook; charset="utf-8"',
          'attachment; filename="30-hook"',
          "7bit",
          "#cloud-boothook\necho early\n",
        ],
        [
          'text/cloud-config; charset="utf-8"',
          'attachment; filename="40-more"',
          "7bit",
          "#cloud-config\nfqdn: web01.example.com\n",
        ],
        [
          'text/x-shellscript; charset="utf-8"',
          'attachment; filename="50-script"',
          "7bit",
          "#!/usr/bin/python3\nprint('hi')\n",
        ],
        [
          'text/x-include-url; charset="utf-8"',
          'attachment; filename="60-include"',
          "7bit",
          "#include\nhttp://example.com/x\n",
        ],
        [
          'text/x-shellscript; charset="utf-8"',
          'attachment; filename="70-motd.sh"',
          "base64",
          "#!/bin/sh\necho 'Grüße von web01 ☃'\n",
        ],
      ],
    );
    for (const part of parsed) {
      assert.equal(part.headers.get("mime-version"), "1.0");
    }
  });
});

Deno.test("renderUserData() leaves out a cloud-config part that renders empty (cloud-init 23.x and later call it degraded)", async () => {
  await withDir(async (dir, source) => {
    const parts = join(dir, "web01");
    await Deno.mkdir(parts);
    await writeFiles(parts, {
      "10-base.yaml": "hostname: {{hostname}}\n",
      // No password set: only the header and a comment are left.
      "15-password.yaml":
        "#cloud-config\n# the password\n% if get('mdserver_password_hash', None):\nchpasswd: {}\n% end\n",
      "20-more": "#cloud-config\nfqdn: {{fqdn}}\n",
    });
    const result = await new TemplateRenderer(source).renderUserData(WEB01, data());
    assert.deepEqual(parseMultipart(result).map((part) => part.headers.get("content-disposition")), [
      'attachment; filename="10-base.yaml"',
      'attachment; filename="20-more"',
    ]);
    // Every part empty: the document keeps its first one rather than none.
    await Deno.remove(join(parts, "10-base.yaml"));
    await Deno.writeTextFile(join(parts, "20-more"), "#cloud-config\n");
    const empty = await new TemplateRenderer(source).renderUserData(WEB01, data());
    assert.deepEqual(parseMultipart(empty).map((part) => part.headers.get("content-disposition")), [
      'attachment; filename="15-password.yaml"',
    ]);
  });
});

Deno.test("renderUserData() refuses a part cloud-init has no handler for, naming the file", async () => {
  await withDir(async (dir, source) => {
    const parts = join(dir, "web01");
    await Deno.mkdir(parts);
    await Deno.writeTextFile(join(parts, "10-base.yaml"), "hostname: {{hostname}}\n");
    await Deno.writeTextFile(join(parts, "70-motd.txt"), "Hello from {{hostname}}\n");
    const renderer = new TemplateRenderer(source);
    const error = await renderer.renderUserData(WEB01, data()).then(() => null, (error) => error);
    assert.ok(error instanceof TemplateError);
    assert.ok(error.file.endsWith("70-motd.txt"), error.file);
    assert.match(error.message, /no handler.*name it \.yaml or \.sh/);
    // Given a marker cloud-init knows, the same file is a part.
    await Deno.writeTextFile(join(parts, "70-motd.txt"), "#cloud-boothook\necho Hello\n");
    const parsed = parseMultipart(await renderer.renderUserData(WEB01, data()));
    assert.equal(parsed[1]?.headers.get("content-type"), 'text/cloud-boothook; charset="utf-8"');
  });
});

Deno.test("renderUserData() makes the same multipart bytes for the same parts", async () => {
  await withDir(async (dir, source) => {
    const parts = join(dir, "web01");
    await Deno.mkdir(parts);
    await Deno.writeTextFile(join(parts, "10-base.yaml"), "hostname: {{hostname}}\n");
    await Deno.writeTextFile(join(parts, "20-run.sh"), "#!/bin/sh\necho {{ipv4}}\n");
    const first = await new TemplateRenderer(source).renderUserData(WEB01, data());
    const again = await new TemplateRenderer(source).renderUserData(WEB01, data());
    assert.equal(again.body, first.body);
    const other = await new TemplateRenderer(source).renderUserData(WEB01, data({ ipv4: "10.122.0.99" }));
    assert.notEqual(other.contentType, first.contentType);
  });
});

Deno.test("renderUserData() validates cloud-config parts and fails the whole document", async () => {
  await withDir(async (dir, source) => {
    const parts = join(dir, "web01");
    await Deno.mkdir(parts);
    await Deno.writeTextFile(join(parts, "10-ok.sh"), "echo ok\n");
    await Deno.writeTextFile(join(parts, "20-bad.yaml"), "runcmd: [\n");
    const error = await new TemplateRenderer(source).renderUserData(
      WEB01,
      data(),
    ).then(
      () => assert.fail("rendered"),
      (error: unknown) => error,
    );
    assert.ok(error instanceof TemplateError);
    assert.equal(error.file, join(parts, "20-bad.yaml"));
  });
});

Deno.test("renderUserData() skips parts that link outside userdata_dir", async () => {
  const outside = await Deno.makeTempDir({ prefix: "mdserver_outside_" });
  try {
    await Deno.writeTextFile(join(outside, "secret.sh"), "echo secret\n");
    await withDir(async (dir, source) => {
      const parts = join(dir, "web01");
      await Deno.mkdir(parts);
      await Deno.writeTextFile(
        join(dir, "shared.yaml"),
        "shared: {{hostname}}\n",
      );
      await symlink(
        join(dir, "shared.yaml"),
        join(parts, "10-shared.yaml"),
      );
      await symlink(
        join(outside, "secret.sh"),
        join(parts, "20-secret.sh"),
      );
      const result = await new TemplateRenderer(source).renderUserData(
        WEB01,
        data(),
      );
      const parsed = parseMultipart(result);
      assert.deepEqual(parsed.map((part) => part.content), ["shared: web01\n"]);
    });
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("renderUserData() picks a boundary that no part contains", async () => {
  await withDir(async (dir, source) => {
    const parts = join(dir, "web01");
    await Deno.mkdir(parts);
    await Deno.writeTextFile(join(parts, "10.sh"), "#!/bin/sh\necho --mdserver-\n");
    for (let i = 0; i < 5; i++) {
      const result = await new TemplateRenderer(source).renderUserData(
        WEB01,
        data(),
      );
      const [part] = parseMultipart(result);
      assert.equal(part?.content, "#!/bin/sh\necho --mdserver-\n");
    }
  });
});
