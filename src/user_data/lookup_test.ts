import assert from "node:assert/strict";
import { join } from "node:path";
import { TemplateNotFoundError, TemplateRenderer } from "./mod.ts";
import { data, symlink, WEB01, withDir } from "./_test_helpers.ts";

// ---------------------------------------------------------------- lookup

Deno.test("renderUserData() prefers the domain's userdata_prefix over its name", async () => {
  await withDir(async (dir, source) => {
    await Deno.writeTextFile(join(dir, "web01"), "by name\n");
    await Deno.writeTextFile(join(dir, "db.yaml"), "by prefix {{hostname}}\n");
    const result = await new TemplateRenderer(source).renderUserData(
      { ...WEB01, prefix: "db" },
      data(),
    );
    assert.equal(result.body, "by prefix web01\n");
    assert.equal(result.template, join(dir, "db.yaml"));
    assert.equal(result.contentType, "text/plain; charset=utf-8");
  });
});

Deno.test("renderUserData() throws TemplateNotFoundError for a prefix with no file, even when the name matches", async () => {
  await withDir(async (dir, source) => {
    await Deno.writeTextFile(join(dir, "web01"), "by name\n");
    await assert.rejects(
      new TemplateRenderer(source).renderUserData({
        ...WEB01,
        prefix: "missing",
      }, data()),
      TemplateNotFoundError,
    );
  });
});

Deno.test("renderUserData() tries the name, then the MAC, each with every suffix in order", async () => {
  await withDir(async (dir, source) => {
    const renderer = new TemplateRenderer(source);
    const mac = join(dir, "52:54:00:12:34:56.yaml");
    await Deno.writeTextFile(mac, "by mac\n");
    assert.equal((await renderer.renderUserData(WEB01, data())).template, mac);

    await Deno.writeTextFile(join(dir, "web01.yaml"), "by name.yaml\n");
    assert.equal(
      (await renderer.renderUserData(WEB01, data())).body,
      "by name.yaml\n",
    );

    await Deno.writeTextFile(join(dir, "web01"), "by bare name\n");
    assert.equal(
      (await renderer.renderUserData(WEB01, data())).body,
      "by bare name\n",
    );

    const yamlFirst = new TemplateRenderer({
      ...source,
      suffixes: [".yaml", ""],
    });
    assert.equal(
      (await yamlFirst.renderUserData(WEB01, data())).body,
      "by name.yaml\n",
    );
  });
});

Deno.test("renderUserData() falls back to default_template, relative to userdata_dir or absolute", async () => {
  await withDir(async (dir, source) => {
    await Deno.writeTextFile(join(dir, "base.yaml"), "base for {{hostname}}\n");
    const relative = new TemplateRenderer({
      ...source,
      defaultTemplate: "base.yaml",
    });
    const result = await relative.renderUserData(WEB01, data());
    assert.equal(result.body, "base for web01\n");
    assert.equal(result.template, join(dir, "base.yaml"));

    const absolute = new TemplateRenderer({
      ...source,
      defaultTemplate: join(dir, "base.yaml"),
    });
    assert.equal(
      (await absolute.renderUserData(WEB01, data())).body,
      "base for web01\n",
    );

    // Name and MAC still win over the default.
    await Deno.writeTextFile(join(dir, "52:54:00:12:34:56"), "by mac\n");
    assert.equal(
      (await relative.renderUserData(WEB01, data())).body,
      "by mac\n",
    );
  });
});

Deno.test("renderUserData() uses the built-in template when nothing matches or default_template is missing", async () => {
  await withDir(async (_dir, source) => {
    for (const defaultTemplate of [null, "absent.yaml"]) {
      const result = await new TemplateRenderer({ ...source, defaultTemplate })
        .renderUserData(WEB01, data());
      assert.equal(result.template, "built-in");
      assert.match(result.body, /^#cloud-config\nhostname: "web01"\n/);
    }
  });
  // A userdata_dir that does not exist is no error either.
  const renderer = new TemplateRenderer({
    userdataDir: "/nonexistent/mdserver/userdata",
    suffixes: [""],
    defaultTemplate: null,
  });
  assert.equal(
    (await renderer.renderUserData(WEB01, data())).template,
    "built-in",
  );
});

Deno.test("renderUserData() refuses names and prefixes that escape userdata_dir", async () => {
  const outside = await Deno.makeTempDir({ prefix: "mdserver_outside_" });
  try {
    await Deno.writeTextFile(join(outside, "passwd"), "root:x:0:0\n");
    await withDir(async (dir, source) => {
      const root = join(dir, "userdata");
      await Deno.mkdir(join(root, "etc"), { recursive: true });
      await Deno.writeTextFile(join(root, "etc", "passwd"), "nested\n");
      await Deno.writeTextFile(join(dir, "secret"), "outside userdata_dir\n");
      const renderer = new TemplateRenderer({ ...source, userdataDir: root });

      const escapes = [
        "../secret",
        "../../etc/passwd",
        "etc/passwd",
        "..",
        ".",
        "",
        "web01\0",
      ];
      for (const name of escapes) {
        const byName = await renderer.renderUserData({
          ...WEB01,
          name,
          mac: name,
        }, data());
        assert.equal(
          byName.template,
          "built-in",
          `name ${JSON.stringify(name)}`,
        );
        await assert.rejects(
          renderer.renderUserData({ ...WEB01, prefix: name }, data()),
          TemplateNotFoundError,
          `prefix ${JSON.stringify(name)}`,
        );
      }

      // A symlink out of userdata_dir is refused; one within it is followed.
      await symlink(join(outside, "passwd"), join(root, "web01.yaml"));
      await symlink(outside, join(root, "db"));
      assert.equal(
        (await renderer.renderUserData(WEB01, data())).template,
        "built-in",
      );
      await assert.rejects(
        renderer.renderUserData({ ...WEB01, prefix: "web01" }, data()),
        TemplateNotFoundError,
      );
      await assert.rejects(
        renderer.renderUserData({ ...WEB01, prefix: "db" }, data()),
        TemplateNotFoundError,
      );
      await symlink(join(root, "etc", "passwd"), join(root, "web01"));
      assert.equal(
        (await renderer.renderUserData(WEB01, data())).body,
        "nested\n",
      );
    });
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});
