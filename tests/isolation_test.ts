/**
 * Guest isolation: guest A crawls every metadata route it can reach (the EC2
 * tree at every version, with and without its IMDSv2 token, dynamic and
 * user-data; every OpenStack file at every version; every NoCloud file; the
 * token endpoint) and no byte of guest B's data appears in any answer, body
 * or header. Tokens are bound to their guest, and the admin API refuses the
 * managed network.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { domainXml, startTestService, type TestService } from "./_harness.ts";
import { extractSeedImage, seedImageMissing } from "./_seed_image.ts";
import { configDriveDiskXml } from "../src/seed/mod.ts";

const TOKEN_HEADER = "x-aws-ec2-metadata-token";
const TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";

interface Guest {
  name: string;
  uuid: string;
  mac: string;
  password: string;
  vendorMarker: string;
  userDataMarker: string;
  tag: string;
}

const ALPHA: Guest = {
  name: "alpha-guest",
  uuid: "a1a1a1a1-0000-4000-8000-00000000a1a1",
  mac: "52:54:00:a1:a1:a1",
  password: "PASSWORD-ALPHA-5c1e",
  vendorMarker: "VENDOR-ALPHA-2b7d",
  userDataMarker: "USERDATA-ALPHA-9e40",
  tag: "TAG-ALPHA-71f3",
};

const BRAVO: Guest = {
  name: "bravo-guest",
  uuid: "b2b2b2b2-0000-4000-8000-00000000b2b2",
  mac: "52:54:00:b2:b2:b2",
  password: "PASSWORD-BRAVO-e83a",
  vendorMarker: "VENDOR-BRAVO-44c9",
  userDataMarker: "USERDATA-BRAVO-d05f",
  tag: "TAG-BRAVO-a6b2",
};

function xml(guest: Guest, devices = ""): string {
  return domainXml({
    name: guest.name,
    uuid: guest.uuid,
    mac: guest.mac,
    devices,
    metadata: `<mdserver:instance xmlns:mdserver="https://github.com/sjjf/md_server">
      <mdserver:password>${guest.password}</mdserver:password>
      <mdserver:vendor_marker>${guest.vendorMarker}</mdserver:vendor_marker>
      <mdserver:tags><mdserver:tag name="secret">${guest.tag}</mdserver:tag></mdserver:tags>
    </mdserver:instance>`,
  });
}

/** Per-instance user-data (looked up by name) carrying a marker and the instance's password. */
function userData(guest: Guest): string {
  return `#cloud-config
# ${guest.userDataMarker}
chpasswd:
  expire: false
  users:
    - name: root
      password: <%= it.metadata.password %>
      type: text
`;
}

const VENDOR_DATA = "#cloud-config\nbootcmd:\n  - echo <%= it.metadata.vendor_marker %> {{hostname}}\n";

interface Registered {
  ipv4: string;
  instanceId: string;
}

async function withGuests(
  body: (t: TestService, a: Registered, b: Registered) => Promise<void>,
  options: { configDrives?: boolean } = {},
) {
  const t = await startTestService({
    adminTcp: true,
    configDrives: options.configDrives ?? false,
    ini: "[mdserver]\nvendordata_template = userdata/vendor.yaml\n",
    userdata: {
      [`${ALPHA.name}.yaml`]: userData(ALPHA),
      [`${BRAVO.name}.yaml`]: userData(BRAVO),
      "vendor.yaml": VENDOR_DATA,
    },
  });
  try {
    const registered: Registered[] = [];
    for (const guest of [ALPHA, BRAVO]) {
      const response = await t.upload(xml(guest, options.configDrives ? configDriveDiskXml(t.config, guest.uuid) : ""));
      const json = await response.json();
      assert.equal(response.status, 201, JSON.stringify(json));
      registered.push({ ipv4: json.ipv4, instanceId: json.instance_id });
    }
    await body(t, registered[0]!, registered[1]!);
  } finally {
    await t.close();
  }
}

/** One answer as the guest saw it. */
interface Answer {
  path: string;
  status: number;
  text: string;
}

/** Fetches a path as a guest; the text is the status line, every header and the body. */
async function fetchAs(t: TestService, ipv4: string, path: string, init: RequestInit = {}): Promise<Answer> {
  const response = await t.guestFetch(ipv4, path, init);
  const body = await response.text();
  const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n");
  return { path, status: response.status, text: `${response.status}\n${headers}\n\n${body}` };
}

function bodyOf(answer: Answer): string {
  return answer.text.slice(answer.text.indexOf("\n\n") + 2);
}

/**
 * Crawls a listing recursively as cloud-init does: entries ending in "/"
 * are directories, `N=name` (public keys) is directory `N/`, anything else
 * a leaf. Every answer is collected.
 */
async function crawl(
  t: TestService,
  ipv4: string,
  path: string,
  headers: Record<string, string>,
  answers: Answer[],
): Promise<void> {
  const answer = await fetchAs(t, ipv4, path, { headers });
  answers.push(answer);
  if (!path.endsWith("/") || answer.status !== 200) return;
  for (const line of bodyOf(answer).split("\n")) {
    if (line === "") continue;
    const key = /^(\d+)=/.exec(line);
    await crawl(t, ipv4, `${path}${key ? `${key[1]}/` : line}`, headers, answers);
  }
}

/** Every answer guest A can get: EC2 (all versions, with and without a token), OpenStack, NoCloud, service, token. */
async function crawlEverything(t: TestService, ipv4: string): Promise<{ answers: Answer[]; token: string }> {
  const answers: Answer[] = [];
  const tokenAnswer = await fetchAs(t, ipv4, "/latest/api/token", { method: "PUT", headers: { [TTL_HEADER]: "300" } });
  assert.equal(tokenAnswer.status, 200);
  answers.push(tokenAnswer);
  const token = bodyOf(tokenAnswer);
  const root = await fetchAs(t, ipv4, "/");
  answers.push(root);
  const versions = bodyOf(root).split("\n").filter((line) => line.endsWith("/"));
  assert.ok(versions.includes("latest/") && versions.length > 2, bodyOf(root));
  for (const version of versions) {
    await crawl(t, ipv4, `/${version}`, {}, answers);
    await crawl(t, ipv4, `/${version}`, { [TOKEN_HEADER]: token }, answers);
    answers.push(await fetchAs(t, ipv4, `/${version}api/token`, { method: "PUT", headers: { [TTL_HEADER]: "60" } }));
  }
  const openstack = await fetchAs(t, ipv4, "/openstack");
  answers.push(openstack);
  for (const version of bodyOf(openstack).split("\n").filter((line) => line !== "")) {
    const listing = await fetchAs(t, ipv4, `/openstack/${version}/`);
    answers.push(listing);
    for (const file of bodyOf(listing).split("\n").filter((line) => line !== "")) {
      answers.push(await fetchAs(t, ipv4, `/openstack/${version}/${file}`));
    }
  }
  const nocloud = await fetchAs(t, ipv4, "/nocloud/");
  answers.push(nocloud);
  for (const file of bodyOf(nocloud).split("\n").filter((line) => line !== "")) {
    answers.push(await fetchAs(t, ipv4, `/nocloud/${file}`));
  }
  for (const key of ["", "name", "type", "version", "location", "ec2_versions", "configuration"]) {
    answers.push(await fetchAs(t, ipv4, `/service/${key}`));
  }
  return { answers, token };
}

/** Every form in which B's data could show: as given, upper-case, without separators. */
function secretsOf(guest: Guest, registered: Registered, token: string | null = null): string[] {
  return [
    guest.name,
    guest.uuid,
    guest.uuid.replaceAll("-", ""),
    guest.mac,
    guest.mac.replaceAll(":", ""),
    registered.ipv4,
    registered.instanceId,
    registered.instanceId.slice(2),
    guest.password,
    guest.vendorMarker,
    guest.userDataMarker,
    guest.tag,
    ...(token === null ? [] : [token]),
  ];
}

function assertNoLeak(answers: Answer[], secrets: string[], whose: string) {
  for (const answer of answers) {
    const text = answer.text.toLowerCase();
    for (const secret of secrets) {
      assert.ok(
        !text.includes(secret.toLowerCase()),
        `${answer.path} (${answer.status}) holds ${whose}'s ${JSON.stringify(secret)}:\n${answer.text}`,
      );
    }
  }
}

Deno.test("guest A's crawl of every metadata route holds none of guest B's data", async () => {
  await withGuests(async (t, a, b) => {
    const bToken = bodyOf(
      await fetchAs(t, b.ipv4, "/latest/api/token", { method: "PUT", headers: { [TTL_HEADER]: "300" } }),
    );
    const { answers } = await crawlEverything(t, a.ipv4);

    // The crawl reached A's own data everywhere, so the check below means something.
    const ok = answers.filter((answer) => answer.status === 200);
    assert.ok(ok.length > 200, `only ${ok.length} answers`);
    for (
      const [path, own] of [
        ["/latest/user-data", ALPHA.password],
        ["/latest/user-data", ALPHA.userDataMarker],
        ["/latest/meta-data/tags/instance/secret", ALPHA.tag],
        ["/openstack/latest/vendor_data.json", ALPHA.vendorMarker],
        ["/nocloud/vendor-data", ALPHA.vendorMarker],
        ["/openstack/latest/meta_data.json", ALPHA.uuid],
        ["/latest/dynamic/instance-identity/document", a.instanceId],
      ] as const
    ) {
      assert.ok(ok.some((answer) => answer.path === path && answer.text.includes(own)), `${path} lacks ${own}`);
    }
    assert.deepEqual(answers.filter((answer) => answer.status >= 500).map((answer) => answer.path), []);
    assertNoLeak(answers, secretsOf(BRAVO, b, bToken), "B");
  });
});

Deno.test("a token works only for the guest it was issued to", async () => {
  await withGuests(async (t, a, b) => {
    const tokenOf = async (ipv4: string) =>
      bodyOf(await fetchAs(t, ipv4, "/latest/api/token", { method: "PUT", headers: { [TTL_HEADER]: "300" } }));
    const aToken = await tokenOf(a.ipv4);
    const bToken = await tokenOf(b.ipv4);
    for (const path of ["/latest/meta-data/", "/latest/meta-data/instance-id", "/latest/user-data", "/2021-03-23/"]) {
      const mine = await fetchAs(t, a.ipv4, path, { headers: { [TOKEN_HEADER]: aToken } });
      assert.equal(mine.status, 200, mine.text);
      for (const [ipv4, token, owner] of [[b.ipv4, aToken, "A"], [a.ipv4, bToken, "B"]] as const) {
        const theirs = await fetchAs(t, ipv4, path, { headers: { [TOKEN_HEADER]: token } });
        assert.equal(theirs.status, 401, `${owner}'s token used by the other guest on ${path}: ${theirs.text}`);
        assertNoLeak([theirs], [ALPHA.password, BRAVO.password, a.instanceId, b.instanceId], "either guest");
      }
    }
  });
});

Deno.test("an address of the pool that no guest holds gets 404 everywhere and no guest's data", async () => {
  await withGuests(async (t, a, b) => {
    const stranger = "127.77.0.199";
    const answers: Answer[] = [];
    for (
      const path of [
        "/latest/meta-data/",
        "/latest/meta-data/instance-id",
        "/latest/user-data",
        "/latest/dynamic/instance-identity/document",
        "/openstack/latest/meta_data.json",
        "/openstack/latest/",
        "/nocloud/meta-data",
        "/nocloud/user-data",
      ]
    ) {
      const answer = await fetchAs(t, stranger, path);
      assert.equal(answer.status, 404, answer.text);
      answers.push(answer);
    }
    const token = await fetchAs(t, stranger, "/latest/api/token", { method: "PUT", headers: { [TTL_HEADER]: "60" } });
    assert.equal(token.status, 404, token.text);
    answers.push(token);
    assertNoLeak(answers, secretsOf(ALPHA, a), "A");
    assertNoLeak(answers, secretsOf(BRAVO, b), "B");
  });
});

Deno.test("the admin API answers 403 to every request from the managed network", async () => {
  await withGuests(async (t, a, b) => {
    const client = Deno.createHttpClient({ localAddress: a.ipv4 });
    try {
      for (
        const [method, path] of [
          ["GET", "/health"],
          ["GET", "/metrics"],
          ["GET", "/v1/instances"],
          ["GET", `/v1/instances/${BRAVO.name}`],
          ["GET", `/v1/instances/${BRAVO.name}/user-data`],
          ["GET", "/v1/known-hosts"],
          ["POST", `/v1/instances/${BRAVO.name}/stopped`],
          ["DELETE", `/v1/instances/${BRAVO.name}`],
        ] as const
      ) {
        // With the token: the managed network is refused whatever it carries.
        const headers = { authorization: `Bearer ${t.adminToken}` };
        const response = await fetch(`${t.adminUrl}${path}`, { method, client, headers });
        const text = await response.text();
        assert.equal(response.status, 403, `${method} ${path}: ${text}`);
        assert.match(text, /not served to the managed network/);
        assertNoLeak([{ path, status: 403, text }], secretsOf(BRAVO, b), "B");
      }
      const upload = await fetch(`${t.adminUrl}/v1/instances`, {
        method: "POST",
        body: xml(BRAVO),
        client,
        headers: { authorization: `Bearer ${t.adminToken}` },
      });
      assert.equal(upload.status, 403, await upload.text());
      const metadataUpload = await t.guestFetch(a.ipv4, "/instance-upload", { method: "POST", body: xml(BRAVO) });
      assert.equal(metadataUpload.status, 403, await metadataUpload.text());
    } finally {
      client.close();
    }
    // Nothing was changed: B is still there, running as before.
    const bravo = await (await t.adminFetch(`/v1/instances/${BRAVO.name}`)).json();
    assert.equal(bravo.ipv4, b.ipv4);
    assert.equal(bravo.state, "registered");
  });
});

Deno.test({
  name: "guest A's config drive and password route hold none of guest B's data, B's password included",
  ignore: await seedImageMissing() !== null,
  async fn() {
    await withGuests(async (t, a, b) => {
      const passwords = new Map<string, string>();
      for (const guest of [BRAVO, ALPHA]) {
        // B's first, so that B's password exists while A's image is built.
        const answer = await (await t.adminFetch(`/v1/instances/${guest.name}/password`, { method: "POST" })).json();
        passwords.set(guest.name, answer.password);
      }
      const image = join(t.config.configDrive.dir, `${ALPHA.uuid}.iso`);
      const files = await extractSeedImage(image, join(t.dir, "alpha-drive"));
      assert.equal(files.get("cloudstack/password/vm_password.txt"), passwords.get(ALPHA.name));
      assert.match(files.get("openstack/latest/user_data") ?? "", new RegExp(ALPHA.userDataMarker));
      const answers = [...files].map(([path, text]) => ({ path: `image:${path}`, status: 200, text }));
      answers.push(await fetchAs(t, a.ipv4, "/openstack/latest/password"));
      assertNoLeak(answers, [...secretsOf(BRAVO, b), passwords.get(BRAVO.name)!], "B");
    }, { configDrives: true });
  },
});
