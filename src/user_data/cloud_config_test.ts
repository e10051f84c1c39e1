import assert from "node:assert/strict";
import { join } from "node:path";
import { TemplateError, TemplateRenderer } from "./mod.ts";
import { data, renderError, renderText, WEB01, withDir } from "./_test_helpers.ts";

Deno.test("renderUserData() rejects rendered #cloud-config that is not valid YAML", async () => {
  const error = await renderError(
    "#cloud-config\nhostname: {{hostname}}\nruncmd: [unclosed\n",
  );
  assert.ok(error.file.endsWith("web01.yaml"));
  assert.equal(typeof error.line, "number");
  assert.match(
    error.message,
    /^Invalid cloud-config from template ".*web01\.yaml": line \d+ /,
  );

  // A value that breaks the YAML only once substituted is caught too.
  const injected = await renderError(
    "#cloud-config\nhostname: {{hostname}}\n",
    {
      hostname: "a: b: c",
    },
  );
  assert.equal(injected.line, 2);

  const list = await renderError("#cloud-config\n- a\n- b\n");
  assert.match(list.message, /not a YAML mapping/);

  // Anything that is not #cloud-config is not parsed.
  assert.equal(
    await renderText("#!/bin/sh\n[unclosed: {\n"),
    "#!/bin/sh\n[unclosed: {\n",
  );
});

Deno.test("renderUserData() checks every rendered document, however often the same template rendered valid YAML", async () => {
  await withDir(async (dir, source) => {
    await Deno.writeTextFile(join(dir, "web01.yaml"), "#cloud-config\nhostname: {{hostname}}\n");
    const renderer = new TemplateRenderer(source);
    for (let round = 0; round < 3; round++) {
      assert.equal((await renderer.renderUserData(WEB01, data())).body, "#cloud-config\nhostname: web01\n");
      await assert.rejects(renderer.renderUserData(WEB01, data({ hostname: "a: b" })), TemplateError);
    }
    // A part that must be cloud-config is checked even when its text was served before as plain text.
    await Deno.remove(join(dir, "web01.yaml"));
    await Deno.writeTextFile(join(dir, "web01.yaml"), "just text {{hostname}}\n");
    assert.equal((await renderer.renderUserData(WEB01, data())).body, "just text web01\n");
    await Deno.remove(join(dir, "web01.yaml"));
    await Deno.mkdir(join(dir, "web01.yaml"));
    await Deno.writeTextFile(join(dir, "web01.yaml", "10-config.yaml"), "just text {{hostname}}\n");
    await assert.rejects(renderer.renderUserData(WEB01, data()), TemplateError);
  });
});

Deno.test("renderUserData() accepts and refuses cloud-config documents as cloud-init's PyYAML does", async () => {
  const accepted = [
    "#cloud-config\n",
    "#cloud-config\nhostname: a\nruncmd:\n  - [ls, -l]\n  - echo 'x: y'\n",
    "#cloud-config\nwrite_files:\n  - content: |\n      a: b: c\n    path: /x\n",
    "#cloud-config\nanchor: &a {k: v}\nalias: *a\n",
    "#cloud-config\nwhen: 2001-12-14\nyes_word: yes\n",
    "#cloud-config\na: 1\na: 2\n",
    "#Cloud-Config\nhostname: a\n",
    "#cloud-config-archive\n- type: text/cloud-config\n  content: 'a: b'\n",
  ];
  for (const text of accepted) await renderText(text);
  const refused = [
    "#cloud-config\nhostname: a: b\n",
    "#cloud-config\nruncmd: [unclosed\n",
    "#cloud-config\ntagged: !custom value\n",
    "#cloud-config\ntuple: !!python/tuple [1, 2]\n",
    "#CLOUD-CONFIG\n- a\n",
    "#cloud-config\n- a\n",
    "#cloud-config\n2001-12-14\n",
    "#cloud-config\njust a string\n",
    "#cloud-config\nkey: value\n\tindented: tab\n",
    "#cloud-config\na: 1\n---\nb: 2\n",
    "#cloud-config\nalias: *nowhere\n",
  ];
  for (const text of refused) await renderError(text);
});

Deno.test("renderUserData() serves a duplicate key and tells of it once per version of the template", async () => {
  await withDir(async (dir, source) => {
    const told: string[] = [];
    const renderer = new TemplateRenderer(source, {
      onWarning: (file, warning) => told.push(`${file.split("/").at(-1)}:${warning.line}: ${warning.message}`),
    });
    const file = join(dir, "web01.yaml");
    await Deno.writeTextFile(file, "#cloud-config\nhostname: {{hostname}}\nhostname: b\n");
    for (let i = 0; i < 3; i++) {
      const body = (await renderer.renderUserData(WEB01, data({ hostname: `h${i}` }))).body;
      assert.equal(body, `#cloud-config\nhostname: h${i}\nhostname: b\n`);
    }
    assert.deepEqual(told, ['web01.yaml:3: duplicate key "hostname": the last one wins']);
    // An edited template is a new version: told again.
    await Deno.writeTextFile(file, "#cloud-config\nhostname: {{hostname}}\npackages: []\nhostname: c\n");
    await renderer.renderUserData(WEB01, data());
    assert.equal(told.length, 2);
    assert.match(told[1]!, /^web01\.yaml:4: duplicate key "hostname"/);
  });
});
