import assert from "node:assert/strict";
import { join } from "node:path";
import { TemplateError, TemplateRenderer } from "./mod.ts";
import { data, KEY, KEY2, renderError, renderText, WEB01, withDir } from "./_test_helpers.ts";

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
