import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { BUILTIN_USER_DATA, TemplateError, TemplateNotFoundError, TemplateRenderer } from "./mod.ts";
import { data, KEY, KEY2, parseMultipart, WEB01, withDir } from "./_test_helpers.ts";

// ------------------------------------------------------------ vendor-data

Deno.test("renderPath() renders a vendor-data file or directory, and reports a missing one", async () => {
  await withDir(async (dir, source) => {
    const renderer = new TemplateRenderer(source);
    const file = join(dir, "vendor.yaml");
    await Deno.writeTextFile(
      file,
      "#cloud-config\npackages: [qemu-guest-agent]\n# {{hostname}}\n",
    );
    const single = await renderer.renderPath(file, data());
    assert.deepEqual(single, {
      body: "#cloud-config\npackages: [qemu-guest-agent]\n# web01\n",
      template: file,
      contentType: "text/plain; charset=utf-8",
    });

    const parts = join(dir, "vendor.d");
    await Deno.mkdir(parts);
    await Deno.writeTextFile(join(parts, "a.sh"), "echo {{hostname}}\n");
    const multi = await renderer.renderPath(parts, data());
    // A .sh part without "#!" is given one: cloud-init would fail to run it.
    assert.deepEqual(parseMultipart(multi).map((part) => part.content), [
      "#!/bin/sh\necho web01\n",
    ]);

    await assert.rejects(
      renderer.renderPath(join(dir, "absent"), data()),
      TemplateNotFoundError,
    );
  });
});

// ----------------------------------------------------------------- cache

Deno.test("renderUserData() recompiles a template when it changes and reuses it otherwise", async () => {
  await withDir(async (dir, source) => {
    const file = join(dir, "web01");
    const renderer = new TemplateRenderer(source);
    await Deno.writeTextFile(file, "one {{hostname}}\n");
    assert.equal(
      (await renderer.renderUserData(WEB01, data())).body,
      "one web01\n",
    );

    await Deno.writeTextFile(file, "second {{hostname}}\n");
    assert.equal(
      (await renderer.renderUserData(WEB01, data())).body,
      "second web01\n",
    );

    // Same size, mtime put back: the compiled template is reused, so the
    // file is not even read again.
    const { mtime, atime } = await Deno.stat(file);
    await Deno.writeTextFile(file, "SECOND {{hostname}}\n");
    await Deno.utime(file, atime ?? new Date(), mtime ?? new Date());
    assert.equal(
      (await renderer.renderUserData(WEB01, data())).body,
      "second web01\n",
    );

    // Same size, new mtime: recompiled.
    await Deno.utime(file, new Date(), new Date(Date.now() + 5_000));
    assert.equal(
      (await renderer.renderUserData(WEB01, data())).body,
      "SECOND web01\n",
    );
  });
});

Deno.test("renderUserData() sees a template added to or removed from userdata_dir at once", async () => {
  await withDir(async (dir, source) => {
    // The listing is kept once the directory has been quiet for 1.1 s (ctime has whole seconds).
    const renderer = new TemplateRenderer(source, { builtinTemplate: "built-in {{hostname}}\n", settleMs: 1_100 });
    await Deno.writeTextFile(join(dir, "other"), "other\n");
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal((await renderer.renderUserData(WEB01, data())).body, "built-in web01\n");
    assert.equal((await renderer.renderUserData(WEB01, data())).body, "built-in web01\n");

    // Added, with the directory's mtime set back (as rsync -t or tar do): seen all the same.
    const { mtime } = await Deno.stat(dir);
    await Deno.writeTextFile(join(dir, "web01.yaml"), "named {{hostname}}\n");
    await Deno.utime(dir, new Date(), mtime ?? new Date());
    assert.equal((await renderer.renderUserData(WEB01, data())).body, "named web01\n");

    await Deno.writeTextFile(join(dir, "52:54:00:12:34:56"), "by MAC\n");
    await Deno.remove(join(dir, "web01.yaml"));
    assert.equal((await renderer.renderUserData(WEB01, data())).body, "by MAC\n");

    await Deno.remove(join(dir, "52:54:00:12:34:56"));
    assert.equal((await renderer.renderUserData(WEB01, data())).body, "built-in web01\n");
  });
});

// -------------------------------------------------------------- built-in

Deno.test("BUILTIN_USER_DATA gives hostname, fqdn and every public key as valid YAML", async () => {
  await withDir(async (_dir, source) => {
    const renderer = new TemplateRenderer(source);
    const result = await renderer.renderUserData(WEB01, data());
    assert.equal(result.contentType, "text/plain; charset=utf-8");
    assert.ok(result.body.startsWith("#cloud-config\n"));
    assert.deepEqual(parse(result.body), {
      hostname: "web01",
      fqdn: "web01.example.com",
      manage_etc_hosts: true,
      ssh_authorized_keys: [KEY, KEY2],
    });

    // Hostile values still make valid YAML; no keys means no key list.
    const hostname = `x: "y" # 'z' \\ \u0085 \u2028 - [a]`;
    const odd = await renderer.renderUserData(
      WEB01,
      { hostname, public_keys: {}, phone_home_url: null },
    );
    assert.deepEqual(parse(odd.body), {
      hostname,
      fqdn: `${hostname}.localdomain`,
      manage_etc_hosts: true,
    });
  });
});

Deno.test("BUILTIN_USER_DATA adds phone_home only when phone_home_url is set", async () => {
  await withDir(async (_dir, source) => {
    const renderer = new TemplateRenderer(source);
    const url = "http://169.254.169.254/mdserver/phone-home";
    const result = await renderer.renderUserData(
      WEB01,
      data({ phone_home_url: url }),
    );
    assert.deepEqual(
      (parse(result.body) as Record<string, unknown>).phone_home,
      {
        url,
        post: [
          "pub_key_rsa",
          "pub_key_ecdsa",
          "pub_key_ed25519",
          "instance_id",
          "hostname",
          "fqdn",
        ],
        tries: 5,
      },
    );
    assert.ok(!BUILTIN_USER_DATA.includes("{{"));
  });
});

Deno.test("TemplateRenderer uses options.builtinTemplate in place of the built-in one", async () => {
  await withDir(async (_dir, source) => {
    const renderer = new TemplateRenderer(source, {
      builtinTemplate: "#!/bin/sh\necho {{hostname}}\n",
    });
    const result = await renderer.renderUserData(WEB01, data());
    assert.deepEqual(result, {
      body: "#!/bin/sh\necho web01\n",
      template: "built-in",
      contentType: "text/plain; charset=utf-8",
    });
  });
  assert.throws(
    () =>
      new TemplateRenderer({
        userdataDir: "/x",
        suffixes: [""],
        defaultTemplate: null,
      }, {
        builtinTemplate: "<%= a + %>",
      }),
    TemplateError,
  );
});

// ----------------------------------------------------- sample template

Deno.test("config/userdata/base.yaml renders to valid cloud-config, with and without a password", async () => {
  const sample = new URL("../../config/userdata/base.yaml", import.meta.url).pathname;
  await withDir(async (_dir, source) => {
    const renderer = new TemplateRenderer({
      ...source,
      defaultTemplate: sample,
    });
    const plain = parse((await renderer.renderUserData(WEB01, data())).body);
    assert.equal(plain.hostname, "web01");
    assert.equal(plain.fqdn, "web01.example.com");
    assert.deepEqual(plain.ssh_authorized_keys, [KEY]);
    assert.equal(plain.chpasswd, undefined);
    assert.match(
      plain.write_files[0].content,
      /^instance-id: i-0b2c4e6a8d1f4a3b9\nipv4: 10\.122\.0\.15\n/,
    );

    const hash = "$6$rounds=4096$salt$abc./XYZ";
    const withPassword = parse(
      (await renderer.renderUserData(WEB01, data({ mdserver_password: hash })))
        .body,
    );
    assert.deepEqual(withPassword.chpasswd, {
      expire: false,
      users: [{ name: "root", password: hash, type: "hash" }],
    });
  });
});
