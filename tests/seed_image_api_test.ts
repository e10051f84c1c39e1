/**
 * Images equal the API: a seed image `seed-iso` writes holds byte for byte
 * what the same guest fetches over HTTP, request-time values included (the
 * phone-home and metadata URLs are the ones the guest would reach), for the
 * built-in template and for a template that uses them.
 *
 * The NoCloud image's network-config is the one deliberate difference (a
 * static address, as the guest has no DHCP before it reads the image); the
 * seed-iso tests assert it.
 */
import assert from "node:assert/strict";
import { startTestService, type TestService } from "./_harness.ts";
import { type SeedFormat, seedImageFiles, seedImageMissing } from "./_seed_image.ts";

const missing = await seedImageMissing();

const NETWORK = { address: "127.105.0.0", prefix: 16, gateway: "127.105.0.1" };
const WEB = { name: "web01", uuid: "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e", mac: "52:54:00:50:50:01" };

/** A template that uses both request-time values, as user-data and as vendor-data. */
const URL_TEMPLATE = `#cloud-config
hostname: {{hostname}}
phone_home:
  url: {{phone_home_url}}
  post: [instance_id, hostname, fqdn]
  tries: 3
write_files:
  - path: /etc/mdserver-url
    content: "{{metadata_url}}"
`;
const URL_VENDOR_TEMPLATE = `#cloud-config
bootcmd:
  - echo metadata at {{metadata_url}}, phone home to {{phone_home_url}}
`;

const TEMPLATES: { name: string; ini: string; userdata: Record<string, string> }[] = [
  { name: "the built-in template", ini: "", userdata: {} },
  {
    name: "a template using {{phone_home_url}} and {{metadata_url}}",
    ini: "[mdserver]\nvendordata_template = userdata/vendor/vendor.yaml\n",
    userdata: { "web01.yaml": URL_TEMPLATE, "vendor/vendor.yaml": URL_VENDOR_TEMPLATE },
  },
];

/** Per format: image path → the HTTP path the guest fetches for it. */
const ROUTES: Record<SeedFormat, Record<string, string>> = {
  configdrive: {
    "openstack/latest/meta_data.json": "/openstack/latest/meta_data.json",
    "openstack/latest/network_data.json": "/openstack/latest/network_data.json",
    "openstack/latest/user_data": "/openstack/latest/user_data",
    "openstack/latest/vendor_data.json": "/openstack/latest/vendor_data.json",
    "openstack/latest/vendor_data2.json": "/openstack/latest/vendor_data2.json",
  },
  nocloud: {
    "meta-data": "/nocloud/meta-data",
    "user-data": "/nocloud/user-data",
    "vendor-data": "/nocloud/vendor-data",
  },
};

async function guestGet(t: TestService, ip: string, path: string): Promise<string> {
  const response = await t.guestFetch(ip, path);
  const body = await response.text();
  assert.equal(response.status, 200, `${path}: ${body}`);
  return body;
}

for (const template of TEMPLATES) {
  for (const format of ["configdrive", "nocloud"] as SeedFormat[]) {
    Deno.test({
      name: `a ${format} image holds byte for byte what the guest fetches over HTTP, with ${template.name}`,
      ignore: missing !== null,
      async fn() {
        const t = await startTestService({
          network: NETWORK,
          ini: template.ini,
          userdata: template.userdata,
          kvFile: true,
        });
        try {
          const ip = (await t.register({ ...WEB })).ipv4;
          const phoneHomeUrl = `${t.metadataUrl}/phone-home`;
          const userData = await guestGet(
            t,
            ip,
            format === "nocloud" ? "/nocloud/user-data" : "/openstack/latest/user_data",
          );
          // What the guest fetches names the URLs it reaches (a precondition, not the point of the test).
          assert.match(userData, new RegExp(`url: ['"]?${phoneHomeUrl.replaceAll(".", "\\.")}['"]?\\n`));

          const files = await seedImageFiles(t, WEB.name, format);
          const image: Record<string, string | undefined> = {};
          const api: Record<string, string> = {};
          for (const [file, path] of Object.entries(ROUTES[format])) {
            image[file] = files.get(file);
            api[file] = await guestGet(t, ip, path);
          }
          assert.deepEqual(
            image,
            api,
            `the ${format} image must hold what the guest fetches over HTTP (${
              Object.values(ROUTES[format]).join(", ")
            }), ` +
              `request-time values included (phone_home_url ${phoneHomeUrl}, metadata_url ${t.metadataUrl})`,
          );
        } finally {
          await t.close();
        }
      },
    });
  }
}
