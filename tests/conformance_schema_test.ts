/**
 * Schema-clean on both clients: the user-data and vendor-data that the
 * shipped templates (config/userdata/*.yaml, set up as config/mdserver.conf
 * describes) and the built-in template produce pass `cloud-init schema` of
 * the system's and of the current cloud-init with no error, no warning and
 * no deprecation, on every route a guest reads them by: EC2 IMDSv1 and
 * IMDSv2, OpenStack, NoCloud over HTTP, and the ConfigDrive and NoCloud
 * seed images. network-config passes the network schema where the client
 * has one. Current cloud-init counts a schema warning or a deprecation as a
 * recoverable error, which leaves the boot "degraded". A multipart document
 * (the boot-events hook joined in) is checked part by part: each
 * cloud-config part by `cloud-init schema`, the boothook by `sh -n`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cloudInitClients, type CloudInitVersion, runCloudInit } from "./_cloudinit.ts";
import { startTestService, type TestService } from "./_harness.ts";
import { seedImageFiles, seedImageMissing } from "./_seed_image.ts";
import { typeFromStart } from "../src/user_data/mod.ts";

const clients = await cloudInitClients("DataSourceNoCloud");
const imageMissing = await seedImageMissing();

const SHIPPED_DIR = fileURLToPath(new URL("../config/userdata", import.meta.url));
const SHIPPED = [...Deno.readDirSync(SHIPPED_DIR)]
  .filter((entry) => entry.isFile && entry.name.endsWith(".yaml"))
  .map((entry) => entry.name)
  .sort();
/** A SHA-512 crypt hash, as `password =` holds one. */
const PASSWORD = "$6$mdserver$0pQ7Jg2Kx9mYt3vFh8sLcWbN1rD4eZ5aU6iO7pA8sD9fG0hJ1kL2zX3cV4bN5mQ6wE7rT8yU9iO0pA1sD2fG3h.";

const NETWORK = { address: "127.106.0.0", prefix: 16, gateway: "127.106.0.1" };
const WEB = { name: "web01", uuid: "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", mac: "52:54:00:60:60:01" };

/** How the operator sets a template up: its name and the mdserver.conf lines. */
interface Setting {
  name: string;
  ini: string;
}

function shippedSetting(file: string, password: boolean): Setting {
  const lines = [
    "[mdserver]",
    `userdata_dir = ${SHIPPED_DIR}`,
    `default_template = ${join(SHIPPED_DIR, file)}`,
    `vendordata_template = ${join(SHIPPED_DIR, file)}`,
  ];
  if (password) lines.push(`password = ${PASSWORD}`);
  return {
    name: `config/userdata/${file} as default and vendor-data template${password ? ", with a password" : ""}`,
    ini: `${lines.join("\n")}\n`,
  };
}

const SETTINGS: Setting[] = [
  { name: "the built-in template", ini: "" },
  ...SHIPPED.flatMap((file) => [shippedSetting(file, false), shippedSetting(file, true)]),
];

type Kind = "user-data" | "vendor-data" | "network-config";

/** One document as a guest reads it, and where from. */
interface Document {
  route: string;
  kind: Kind;
  text: string;
}

async function guestGet(t: TestService, ip: string, path: string, headers: Record<string, string> = {}) {
  const response = await t.guestFetch(ip, path, { headers });
  const body = await response.text();
  assert.equal(response.status, 200, `${path}: ${body}`);
  return body;
}

/** The cloud-init payload of an OpenStack vendor_data*.json ("" when there is none). */
function openstackVendor(json: string | undefined, where: string): string {
  assert.ok(json !== undefined, `${where} is missing`);
  const payload = (JSON.parse(json) as Record<string, unknown>)["cloud-init"];
  assert.ok(payload === undefined || typeof payload === "string", `${where}: "cloud-init" is not a string`);
  return payload ?? "";
}

/** Every document of every route for one setting. */
async function collect(setting: Setting): Promise<Document[]> {
  const t = await startTestService({ network: NETWORK, ini: setting.ini, kvFile: true });
  try {
    const ip = (await t.register({ ...WEB })).ipv4;
    const tokenAnswer = await t.guestFetch(ip, "/latest/api/token", {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "300" },
    });
    const token = await tokenAnswer.text();
    assert.equal(tokenAnswer.status, 200, `PUT /latest/api/token: ${token}`);
    const [configdrive, nocloud] = await Promise.all([
      seedImageFiles(t, WEB.name, "configdrive"),
      seedImageFiles(t, WEB.name, "nocloud"),
    ]);
    const documents: Document[] = [
      { route: "EC2 IMDSv1 /latest/user-data", kind: "user-data", text: await guestGet(t, ip, "/latest/user-data") },
      {
        route: "EC2 IMDSv2 /latest/user-data",
        kind: "user-data",
        text: await guestGet(t, ip, "/latest/user-data", { "x-aws-ec2-metadata-token": token }),
      },
      {
        route: "OpenStack /openstack/latest/user_data",
        kind: "user-data",
        text: await guestGet(t, ip, "/openstack/latest/user_data"),
      },
      ...await Promise.all(["vendor_data.json", "vendor_data2.json"].map(async (file) => ({
        route: `OpenStack /openstack/latest/${file}`,
        kind: "vendor-data" as const,
        text: openstackVendor(await guestGet(t, ip, `/openstack/latest/${file}`), file),
      }))),
      ...await Promise.all((["user-data", "vendor-data", "network-config"] as const).map(async (kind) => ({
        route: `NoCloud /nocloud/${kind}`,
        kind,
        text: await guestGet(t, ip, `/nocloud/${kind}`),
      }))),
      {
        route: "ConfigDrive image openstack/latest/user_data",
        kind: "user-data",
        text: configdrive.get("openstack/latest/user_data") ?? "",
      },
      ...["vendor_data.json", "vendor_data2.json"].map((file) => ({
        route: `ConfigDrive image openstack/latest/${file}`,
        kind: "vendor-data" as const,
        text: openstackVendor(configdrive.get(`openstack/latest/${file}`), `image ${file}`),
      })),
      ...(["user-data", "vendor-data", "network-config"] as const).map((kind) => ({
        route: `NoCloud image ${kind}`,
        kind,
        text: nocloud.get(kind) ?? "",
      })),
    ];
    for (const document of documents) {
      if (document.kind !== "vendor-data") {
        assert.notEqual(document.text.trim(), "", `${setting.name}: ${document.route} is empty`);
      }
    }
    return documents;
  } finally {
    await t.close();
  }
}

// Both clients' tests check the same documents: collect them once per setting.
const collected = new Map<string, Promise<Document[]>>();
function documentsOf(setting: Setting): Promise<Document[]> {
  let documents = collected.get(setting.name);
  if (!documents) {
    documents = collect(setting);
    collected.set(setting.name, documents);
  }
  return documents;
}

/** One part of a document: its content type and text (a document that is no multipart is one part). */
interface DocumentPart {
  type: string;
  text: string;
}

/** The parts of a MIME multipart document, decoded, or the document itself typed by its start. */
function partsOf(document: Document): DocumentPart[] {
  if (document.kind === "network-config") return [{ type: "network-config", text: document.text }];
  const boundary = /^content-type:\s*multipart\/mixed;.*boundary="?([^";\r\n]+)"?/im.exec(document.text)?.[1];
  if (boundary === undefined) return [{ type: typeFromStart(document.text) ?? "text/plain", text: document.text }];
  const chunks = document.text.split(`--${boundary}`).slice(1, -1);
  return chunks.map((chunk) => {
    const [head, ...rest] = chunk.replace(/^\r?\n/, "").split(/\r?\n\r?\n/);
    const body = rest.join("\n\n");
    const type = /^content-type:\s*([^;\s]+)/im.exec(head!)?.[1]?.toLowerCase() ?? "text/plain";
    const base64 = /^content-transfer-encoding:\s*base64/im.test(head!);
    const text = base64
      ? new TextDecoder().decode(Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0)))
      : body;
    return { type, text };
  });
}

/**
 * What this client says of one document: null when clean, else why not. `cloud-init schema` checks
 * cloud-config and network-config (each cloud-config part of a multipart on its own); a boothook or a
 * shell script part must parse as POSIX sh (`sh -n`); any other part is a problem.
 */
async function schemaProblem(client: CloudInitVersion, dir: string, index: number, document: Document) {
  const problems: string[] = [];
  for (const [partIndex, part] of partsOf(document).entries()) {
    const file = join(dir, `document-${index}-${partIndex}.yaml`);
    if (part.type === "text/cloud-boothook" || part.type === "text/x-shellscript") {
      await Deno.writeTextFile(file, part.text);
      const { code, stderr } = await new Deno.Command("/bin/sh", { args: ["-n", file], stderr: "piped" }).output();
      if (code !== 0) problems.push(`sh -n ${part.type}: ${new TextDecoder().decode(stderr)}`);
      continue;
    }
    if (part.type !== "text/cloud-config" && part.type !== "network-config") {
      problems.push(`a ${part.type} part`);
      continue;
    }
    await Deno.writeTextFile(file, part.text);
    const args = ["schema", "-c", file];
    if (document.kind === "network-config") args.push("--schema-type", "network-config");
    const { code, stdout, stderr } = await runCloudInit(client, args);
    const output = `${stdout}${stderr}`.trim();
    if (code !== 0 || /warning|deprecat/i.test(output)) {
      problems.push(`cloud-init ${args.join(" ")}: exit ${code}: ${output}`);
    }
  }
  return problems.length === 0 ? null : problems.join("\n");
}

for (const { client, missing } of clients) {
  for (const setting of SETTINGS) {
    Deno.test({
      name: `${client.label}: ${setting.name}: user-data, vendor-data${
        client.networkSchema ? " and network-config" : ""
      } of every route pass cloud-init schema without warnings`,
      ignore: missing !== null || imageMissing !== null,
      async fn() {
        const documents = (await documentsOf(setting)).filter((document) =>
          document.text.trim() !== "" && (document.kind !== "network-config" || client.networkSchema)
        );
        // Identical documents (most routes serve the same bytes) are checked once, naming every route.
        const distinct = new Map<string, { document: Document; routes: string[] }>();
        for (const document of documents) {
          const key = `${document.kind}\n${document.text}`;
          const entry = distinct.get(key) ?? { document, routes: [] };
          entry.routes.push(document.route);
          distinct.set(key, entry);
        }
        const dir = await Deno.makeTempDir({ prefix: "mdserver-schema-test-" });
        try {
          const problems = (await Promise.all(
            [...distinct.values()].map(async ({ document, routes }, index) => {
              const problem = await schemaProblem(client, dir, index, document);
              return problem && `${routes.join(", ")} (${document.kind}):\n${document.text}\n=> ${problem}`;
            }),
          )).filter((problem) => problem !== null);
          assert.deepEqual(
            problems,
            [],
            `${client.label}, ${setting.name}: documents that do not pass cloud-init schema cleanly:\n\n` +
              problems.join("\n\n"),
          );
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    });
  }
}
