import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../config/mod.ts";
import { metadataBaseUrl, nocloudSerial, runSmbios, smbiosSnippet } from "./smbios.ts";

async function withConfig(mdserver: string, body: (file: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "ud"));
    await Deno.writeTextFile(join(dir, "mdserver.conf"), `[mdserver]\nuserdata_dir = ud\n${mdserver}`);
    await body(join(dir, "mdserver.conf"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("nocloudSerial() is ds=nocloud with dsmode=net and the listener's URL ending in /nocloud/", async () => {
  await withConfig("", async (file) => {
    const config = await loadConfig(file);
    assert.equal(metadataBaseUrl(config), "http://169.254.169.254");
    assert.equal(nocloudSerial(config), "ds=nocloud;s=http://169.254.169.254/nocloud/;dsmode=net");
  });
  await withConfig("listen_address = 127.0.0.1\nport = 8169\n", async (file) => {
    assert.equal(nocloudSerial(await loadConfig(file)), "ds=nocloud;s=http://127.0.0.1:8169/nocloud/;dsmode=net");
  });
});

Deno.test("smbiosSnippet() gives the <sysinfo> serial and the <os><smbios mode='sysinfo'/></os> it needs", async () => {
  await withConfig("", async (file) => {
    const text = smbiosSnippet(await loadConfig(file), { datasource: "nocloud", domain: "web<01>" });
    assert.match(text, /virsh edit web&lt;01&gt;/);
    assert.ok(
      text.endsWith(
        "<sysinfo type='smbios'>\n  <system>\n" +
          "    <entry name='serial'>ds=nocloud;s=http://169.254.169.254/nocloud/;dsmode=net</entry>\n" +
          "  </system>\n</sysinfo>\n<os>\n  <smbios mode='sysinfo'/>\n</os>\n",
      ),
      text,
    );
  });
});

Deno.test("smbiosSnippet() for OpenStack sets the product name cloud-init detects", async () => {
  await withConfig("", async (file) => {
    const text = smbiosSnippet(await loadConfig(file), { datasource: "openstack" });
    assert.match(text, /<entry name='product'>OpenStack Nova<\/entry>/);
    assert.doesNotMatch(text, /serial/);
  });
});

Deno.test("runSmbios() prints the snippet and refuses an unknown datasource", async () => {
  await withConfig("", async (file) => {
    const lines: string[] = [];
    const code = await runSmbios(
      { args: ["smbios", "web01"], options: new Map([["datasource", "openstack"]]) },
      { configFile: file, print: (line) => lines.push(line) },
    );
    assert.equal(code, 0);
    assert.match(lines.join("\n"), /virsh edit web01:[^]*OpenStack Nova/);
    await assert.rejects(
      () =>
        runSmbios({ args: ["smbios"], options: new Map([["datasource", "ec2"]]) }, {
          configFile: file,
          print: () => {},
        }),
      TypeError,
    );
  });
});

Deno.test("runSmbios() with --xml prints the <sysinfo> element alone, which parses as XML", async () => {
  await withConfig("", async (file) => {
    const lines: string[] = [];
    const code = await runSmbios(
      { args: ["smbios", "web01"], options: new Map([["xml", true]]) },
      { configFile: file, print: (line) => lines.push(line) },
    );
    assert.equal(code, 0);
    assert.equal(
      lines.join("\n"),
      "<sysinfo type='smbios'>\n  <system>\n" +
        "    <entry name='serial'>ds=nocloud;s=http://169.254.169.254/nocloud/;dsmode=net</entry>\n" +
        "  </system>\n</sysinfo>",
    );
  });
});
