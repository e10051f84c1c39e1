import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import {
  BUILTIN_USER_DATA,
  type RenderedTemplate,
  TemplateError,
  TemplateNotFoundError,
  TemplateRenderer,
  type TemplateSource,
  type UserDataTarget,
} from "./mod.ts";

/** Makes a symlink with ln(1): Deno.symlink needs unscoped read and write permission. */
async function symlink(target: string, path: string): Promise<void> {
  const { code } = await new Deno.Command("ln", { args: ["-s", target, path] }).output();
  if (code !== 0) throw new Error(`ln -s ${target} ${path} failed`);
}

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3 ops@admin";
const KEY2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 backup@vault";

/** Template data as the request handler builds it for md_server templates. */
function data(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: "web01",
    fqdn: "web01.example.com",
    public_keys: { default: KEY, backup: KEY2 },
    public_key_default: KEY,
    public_key_backup: KEY2,
    instance_id: "i-0b2c4e6a8d1f4a3b9",
    ipv4: "10.122.0.15",
    mac: "52:54:00:12:34:56",
    foo: "bar",
    ...extra,
  };
}

const WEB01: UserDataTarget = {
  prefix: null,
  name: "web01",
  mac: "52:54:00:12:34:56",
};

/** Runs fn with a fresh userdata_dir, removed afterwards. */
async function withDir(
  fn: (dir: string, source: TemplateSource) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver_userdata_" });
  try {
    await fn(dir, {
      userdataDir: dir,
      suffixes: ["", ".yaml"],
      defaultTemplate: null,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Renders template text saved as `<dir>/web01.yaml`. */
async function renderText(
  text: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  let body = "";
  await withDir(async (dir, source) => {
    await Deno.writeTextFile(join(dir, "web01.yaml"), text);
    body = (await new TemplateRenderer(source).renderUserData(WEB01, data(extra)))
      .body;
  });
  return body;
}

/** The TemplateError that rendering text throws. */
async function renderError(
  text: string,
  extra: Record<string, unknown> = {},
): Promise<TemplateError> {
  const error = await renderText(text, extra).then(
    () => assert.fail("expected a TemplateError"),
    (error: unknown) => error,
  );
  assert.ok(
    error instanceof TemplateError,
    `expected TemplateError, got ${error}`,
  );
  return error;
}

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

// ------------------------------------------------------ md_server syntax

Deno.test("renderUserData() renders md_server {{hostname}} templates unchanged", async () => {
  const body = await renderText(
    `#cloud-config
hostname: testing-{{hostname}}
local-hostname: {{hostname}}
fqdn: testing-{{hostname}}.localdomain
manage_etc_hosts: true
ssh_authorized_keys:
    - {{public_key_default}}
    - {{public_keys['default']}}
    - {{ public_keys["backup"] }}
password: {{mdserver_password}}
foo: {{ foo }} {{!foo}} {{foo}}
`,
    { mdserver_password: "$6$salt$hash" },
  );
  assert.equal(
    body,
    `#cloud-config
hostname: testing-web01
local-hostname: web01
fqdn: testing-web01.localdomain
manage_etc_hosts: true
ssh_authorized_keys:
    - ${KEY}
    - ${KEY}
    - ${KEY2}
password: $6$salt$hash
foo: bar bar bar
`,
  );
});

Deno.test("renderUserData() supports Bottle % if / % for lines with defined() and Python truthiness", async () => {
  const template = `#cloud-config
% if defined('mdserver_password') and mdserver_password:
password: {{mdserver_password}}
% elif get('fallback', None):
never: here
% else:
password: none
% end
keys:
  % for name in public_keys:
  - {{name}}: {{public_keys[name]}}
  % end
`;
  assert.equal(
    await renderText(template, { mdserver_password: "pw" }),
    `#cloud-config
password: pw
keys:
  - default: ${KEY}
  - backup: ${KEY2}
`,
  );
  assert.match(
    await renderText(template.replace(/^% elif.*\nnever.*\n/m, "")),
    /\npassword: none\n/,
  );
});

Deno.test("renderUserData() rejects Bottle Python lines it cannot run, naming the line", async () => {
  const error = await renderError(
    "#cloud-config\nhostname: x\n% include('other.tpl')\n",
  );
  assert.equal(error.line, 3);
  assert.match(
    error.message,
    /line 3: Python code lines \("% include"\) are not supported/,
  );
});

Deno.test("renderUserData() leaves a literal <% in an md_server template alone", async () => {
  const text = `#!/bin/sh
printf '<%s> on {{hostname}}\\n' "$(hostname)"
echo "100<%"
`;
  assert.equal(await renderText(text), text.replace("{{hostname}}", "web01"));
});

Deno.test("renderUserData() passes cloud-init Jinja templates' {{ }} through", async () => {
  const text = `## template: jinja
#cloud-config
runcmd:
  - echo '{{ v1.local_hostname }}' > /tmp/name
  - echo '<%= hostname %>'
`;
  assert.equal(
    await renderText(text),
    text.replace("<%= hostname %>", "web01"),
  );
});

// ------------------------------------------------------------ Eta syntax

Deno.test("renderUserData() renders Eta tags with it. and bare names", async () => {
  const body = await renderText(`#cloud-config
hostname: <%= it.hostname %>
fqdn: <%= fqdn %>
ssh_authorized_keys:
  <% for (const key of Object.values(public_keys)) { %>
  - <%= yaml(key) %>
  <% } %>
write_files:
  - path: /etc/motd
    content: "<%~ it.ipv4 %>"
`);
  assert.equal(
    body,
    `#cloud-config
hostname: web01
fqdn: web01.example.com
ssh_authorized_keys:
  - "${KEY}"
  - "${KEY2}"
write_files:
  - path: /etc/motd
    content: "10.122.0.15"
`,
  );
});

Deno.test("renderUserData() runs code tags that start with [ or ( and reports unbalanced blocks", async () => {
  assert.equal(
    await renderText(
      "<% ['a', 'b'].forEach((k) => { %>\n- <%= k %>\n<% }) %>\nend\n",
    ),
    "- a\n- b\nend\n",
  );
  const bad = await renderError(
    "<% if (x) { %>\na\n<% } else { %>\nb <%= (( %>\n<% } %>\n",
    {
      x: 1,
    },
  );
  assert.equal(bad.line, 4, bad.message);
  const unbalanced = await renderError("a\n<% if (hostname) { %>\nb\n");
  assert.match(unbalanced.message, /unbalanced/);
});

Deno.test("renderUserData() HTML-escapes nothing", async () => {
  const nasty = `<b>&"'</b>`;
  const body = await renderText(
    "#!/bin/sh\n{{x}} {{!x}} <%= x %> <%~ it.x %>\n",
    { x: nasty },
  );
  assert.equal(body, `#!/bin/sh\n${nasty} ${nasty} ${nasty} ${nasty}\n`);
});

Deno.test("renderUserData() renders null as empty and objects as JSON", async () => {
  assert.equal(
    await renderText("a={{n}} b={{o}}\n", { n: null, o: { k: [1, "x"] } }),
    'a= b={"k":[1,"x"]}\n',
  );
});

// ---------------------------------------------------------------- errors

Deno.test("renderUserData() throws TemplateError with file and line for an undefined variable", async () => {
  await withDir(async (dir, source) => {
    const file = join(dir, "web01.yaml");
    const renderer = new TemplateRenderer(source);
    const cases: [string, number][] = [
      ["#cloud-config\nhostname: {{hostname}}\nuser: {{no_such_key}}\n", 3],
      ["#cloud-config\n\n\nuser: <%= it.no_such_key %>\n", 4],
      ["#cloud-config\nuser: <%= public_keys.none.trim() %>\n", 2],
    ];
    for (const [text, line] of cases) {
      await Deno.writeTextFile(file, text);
      const error = await renderer.renderUserData(WEB01, data()).then(
        () => assert.fail(`rendered ${JSON.stringify(text)}`),
        (error: unknown) => error,
      );
      assert.ok(error instanceof TemplateError);
      assert.equal(error.file, file);
      assert.equal(error.line, line, error.message);
      assert.ok(
        error.message.includes(`"${file}": line ${line}:`),
        error.message,
      );
    }
  });
});

Deno.test("renderUserData() throws TemplateError with the line for template syntax errors", async () => {
  const js = await renderError("#cloud-config\nhostname: <%= hostname + %>\n");
  assert.equal(js.line, 2, js.message);
  assert.match(
    js.message,
    /^Cannot compile template ".*web01\.yaml": line 2: /,
  );

  const eta = await renderError(
    '#cloud-config\n\nhostname: <%= "unclosed %>\n',
  );
  assert.equal(eta.line, 3, eta.message);

  const empty = await renderError("#cloud-config\nhostname: {{ }}\n");
  assert.equal(empty.line, 2);
});

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

// ------------------------------------------------------------- multipart

/** Splits a multipart body back into parts: headers (lower-cased names) and decoded content. */
function parseMultipart(
  result: RenderedTemplate,
): { headers: Map<string, string>; content: string }[] {
  const boundary = /^multipart\/mixed; boundary=(\S+)$/.exec(result.contentType)
    ?.[1];
  assert.ok(boundary, result.contentType);
  const [head = "", ...rest] = result.body.split(`\n--${boundary}`);
  assert.equal(
    head,
    `MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${boundary}"\n`,
  );
  assert.equal(rest.at(-1), "--\n");
  return rest.slice(0, -1).map((raw) => {
    assert.ok(raw.startsWith("\n"));
    const split = raw.indexOf("\n\n");
    const headers = new Map(
      raw.slice(1, split).split("\n").map((line) => {
        const colon = line.indexOf(": ");
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 2)] as [
          string,
          string,
        ];
      }),
    );
    let content = raw.slice(split + 2);
    if (headers.get("content-transfer-encoding") === "base64") {
      const binary = atob(content.replaceAll("\n", ""));
      content = new TextDecoder().decode(
        Uint8Array.from(binary, (c) => c.charCodeAt(0)),
      );
    }
    return { headers, content };
  });
}

Deno.test("renderUserData() assembles a directory of parts into MIME multipart", async () => {
  await withDir(async (dir, source) => {
    const parts = join(dir, "web01");
    await Deno.mkdir(parts);
    await Deno.writeTextFile(
      join(parts, "10-base.yaml"),
      "hostname: {{hostname}}\n",
    );
    await Deno.writeTextFile(
      join(parts, "20-setup.sh"),
      "echo <%= it.ipv4 %>\n",
    );
    await Deno.writeTextFile(
      join(parts, "30-hook"),
      "#cloud-boothook\necho early\n",
    );
    await Deno.writeTextFile(
      join(parts, "40-more"),
      "#cloud-config\nfqdn: {{fqdn}}\n",
    );
    await Deno.writeTextFile(
      join(parts, "50-script"),
      "#!/usr/bin/python3\nprint('hi')\n",
    );
    await Deno.writeTextFile(
      join(parts, "60-include"),
      "#include\nhttp://example.com/x\n",
    );
    await Deno.writeTextFile(
      join(parts, "70-motd.sh"),
      "#!/bin/sh\necho 'Grüße von {{hostname}} ☃'\n",
    );
    await Deno.writeTextFile(
      join(parts, ".hidden.yaml"),
      "ignored: {{nope}}\n",
    );
    await Deno.writeTextFile(
      join(parts, "10-base.yaml~"),
      "ignored: {{nope}}\n",
    );
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
