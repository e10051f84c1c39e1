import assert from "node:assert/strict";
import { domainXml, startTestService, type TestDomain, type TestService } from "./_harness.ts";

const WEB = {
  name: "web01",
  uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
  mac: "52:54:00:12:34:56",
  metadata: `<mdserver:instance xmlns:mdserver="https://github.com/sjjf/md_server">
      <mdserver:role>web</mdserver:role>
      <mdserver:tags><mdserver:tag name="env">prod</mdserver:tag></mdserver:tags>
    </mdserver:instance>`,
};

async function withService(body: (t: TestService) => Promise<void>, options = {}) {
  const t = await startTestService(options);
  try {
    await body(t);
  } finally {
    await t.close();
  }
}

function uploadJson(t: TestService, domain: TestDomain) {
  return t.register(domain);
}

async function text(response: Response) {
  return { status: response.status, body: await response.text() };
}

async function instanceCount(t: TestService) {
  return (await (await t.adminFetch(`/v1/instances`)).json()).length;
}

Deno.test("an uploaded domain is served its EC2 meta-data by source address", async () => {
  await withService(async (t) => {
    const uploaded = await uploadJson(t, WEB);
    assert.equal(uploaded.name, "web01");
    assert.equal(uploaded.mac, "52:54:00:12:34:56");
    assert.equal(uploaded.instance_id, "i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b");
    const ip = uploaded.ipv4;
    assert.match(ip, /^127\.77\./);

    const get = async (path: string) => await text(await t.guestFetch(ip, path));
    assert.deepEqual(await get("/latest/meta-data/instance-id"), {
      status: 200,
      body: "i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b",
    });
    assert.deepEqual(await get("/latest/meta-data/local-ipv4"), { status: 200, body: ip });
    assert.deepEqual(await get("/latest/meta-data/mac"), { status: 200, body: "52:54:00:12:34:56" });
    assert.deepEqual(await get("/latest/meta-data/local-hostname"), { status: 200, body: "web01.test.internal" });
    assert.deepEqual(await get("/latest/meta-data/placement/availability-zone"), { status: 200, body: "testzone" });
    assert.deepEqual(await get("/latest/meta-data/public-keys/"), { status: 200, body: "0=default\n1=backup" });
    assert.deepEqual(await get("/latest/meta-data/public-keys/0/"), { status: 200, body: "openssh-key" });
    assert.deepEqual(await get("/latest/meta-data/public-keys/1/openssh-key"), {
      status: 200,
      body: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABTestKeyBackup test@backup",
    });
    assert.deepEqual(await get("/latest/meta-data/tags/instance/env"), { status: 200, body: "prod" });
    assert.deepEqual(await get(`/latest/meta-data/network/interfaces/macs/${WEB.mac}/local-ipv4s`), {
      status: 200,
      body: ip,
    });
    assert.deepEqual(await get(`/latest/meta-data/network/interfaces/macs/${WEB.mac}/subnet-ipv4-cidr-block`), {
      status: 200,
      body: "127.77.0.0/16",
    });
    assert.equal((await get("/latest/meta-data/nonexistent")).status, 404);
    assert.equal((await get("/latest/meta-data/instance-id/")).status, 404);
  });
});

Deno.test("every path the EC2 tree lists answers 200, at every version cloud-init probes", async () => {
  await withService(async (t) => {
    const { ipv4 } = await uploadJson(t, WEB);
    const root = await text(await t.guestFetch(ipv4, "/"));
    for (const version of ["2021-03-23", "2018-09-24", "2016-09-02", "2009-04-04", "latest"]) {
      assert.ok(root.body.split("\n").includes(`${version}/`), `${version} missing from /`);
      const top = await text(await t.guestFetch(ipv4, `/${version}/`));
      assert.deepEqual(top.body.split("\n"), ["dynamic/", "meta-data/", "user-data"]);
      const pending = [`/${version}/meta-data/`];
      let leaves = 0;
      while (pending.length > 0) {
        const path = pending.pop()!;
        const response = await text(await t.guestFetch(ipv4, path));
        assert.equal(response.status, 200, path);
        if (!path.endsWith("/")) {
          leaves++;
          assert.ok(!response.body.endsWith("\n"), `${path} ends in a newline`);
          continue;
        }
        for (const line of response.body.split("\n")) {
          assert.notEqual(line, "", `${path} lists an empty line`);
          // public-keys lists "0=name"; the entry is "0/"
          const entry = line.includes("=") ? `${line.split("=")[0]}/` : line;
          pending.push(path + entry);
        }
      }
      assert.ok(leaves > 25, `only ${leaves} leaves at ${version}`);
    }
  });
});

Deno.test("a request from an unknown address gets 404 with a reason", async () => {
  await withService(async (t) => {
    await uploadJson(t, WEB);
    const response = await text(await t.guestFetch("127.77.9.9", "/latest/meta-data/instance-id"));
    assert.equal(response.status, 404);
    assert.match(response.body, /unknown client 127\.77\.9\.9/);
  });
});

Deno.test("a re-uploaded domain keeps its address and instance-id", async () => {
  await withService(async (t) => {
    const first = await uploadJson(t, WEB);
    await uploadJson(
      t,
      { ...WEB, name: "other", uuid: "11111111-2222-4333-8444-555555555555", mac: "52:54:00:00:00:09" },
    );
    const second = await t.upload(domainXml(WEB));
    assert.equal(second.status, 200);
    const again = await second.json();
    assert.equal(again.ipv4, first.ipv4);
    assert.equal(again.instance_id, first.instance_id);
  });
});

Deno.test("200 concurrent uploads over HTTP get 200 distinct addresses", async () => {
  await withService(async (t) => {
    const uploads = Array.from({ length: 200 }, (_, i) => {
      const hex = (i + 1).toString(16).padStart(4, "0");
      return uploadJson(
        t,
        {
          name: `vm-${i}`,
          uuid: `${hex}aaaa-0000-4000-8000-00000000${hex}`,
          mac: `52:54:00:aa:${hex.slice(0, 2)}:${hex.slice(2)}`,
        },
      );
    });
    const results = await Promise.all(uploads);
    assert.equal(new Set(results.map((r) => r.ipv4)).size, 200);
  });
});

Deno.test("bad uploads get a 4xx with a one-line reason and change nothing", async () => {
  await withService(async (t) => {
    await uploadJson(t, WEB);
    const cases: [string, string | Uint8Array<ArrayBuffer>, number, RegExp][] = [
      ["malformed XML", "<domain><name>x</name>", 400, /invalid domain XML/],
      ["a DOCTYPE", `<!DOCTYPE domain [<!ENTITY x "y">]>${domainXml({ ...WEB, name: "d" })}`, 400, /DOCTYPE/],
      [
        "no interface on the network",
        domainXml({
          ...WEB,
          name: "lan",
          uuid: "22222222-2222-4222-8222-222222222222",
          mac: "52:54:00:00:00:02",
          network: "lan",
        }),
        422,
        /no interface on network "mds"/,
      ],
      ["a body over 1 MiB", "<domain>" + "x".repeat(1024 * 1024 + 10) + "</domain>", 413, /over 1048576 bytes/],
      ["invalid UTF-8", new Uint8Array([0x3c, 0xff, 0xfe, 0x3e]), 400, /not valid UTF-8/],
      [
        "a MAC held by another domain",
        domainXml({ ...WEB, name: "thief", uuid: "33333333-3333-4333-8333-333333333333" }),
        409,
        /already belongs to instance "web01"/,
      ],
    ];
    for (const [what, body, status, reason] of cases) {
      const response = await text(await fetch(`${t.metadataUrl}/instance-upload`, { method: "POST", body }));
      assert.equal(response.status, status, `${what}: ${response.body}`);
      assert.match(response.body, reason, what);
      assert.equal(response.body.trimEnd().split("\n").length, 1, `${what}: reason is not one line`);
    }
    assert.equal(await instanceCount(t), 1);
  });
});

Deno.test("a full pool is a 507 and changes nothing", async () => {
  await withService(async (t) => {
    // 127.88.0.0/30: hosts .1 and .2; .1 is the gateway → one address.
    await uploadJson(t, WEB);
    const response = await text(
      await t.upload(domainXml({ name: "b", uuid: "44444444-4444-4444-8444-444444444444", mac: "52:54:00:00:00:04" })),
    );
    assert.equal(response.status, 507);
    assert.match(response.body, /pool is full/);
    assert.equal(await instanceCount(t), 1);
  }, { network: { address: "127.88.0.0", prefix: 30, gateway: "127.88.0.1" } });
});

Deno.test("uploads are refused from a guest address and from other hosts' addresses", async () => {
  await withService(async (t) => {
    const { ipv4 } = await uploadJson(t, WEB);
    const fromGuest = await text(
      await t.guestFetch(ipv4, "/instance-upload", { method: "POST", body: domainXml(WEB) }),
    );
    assert.equal(fromGuest.status, 403);
    const fromElsewhere = await text(
      await t.guestFetch("127.5.5.5", "/instance-upload", { method: "POST", body: domainXml(WEB) }),
    );
    assert.equal(fromElsewhere.status, 403);
    assert.match(fromElsewhere.body, /only from this host/);
  });
});

Deno.test("md_server's /service endpoints keep working", async () => {
  await withService(async (t) => {
    const get = async (path: string) => await text(await fetch(`${t.metadataUrl}${path}`));
    assert.deepEqual((await get("/service/")).body.split("\n"), [
      "name",
      "type",
      "version",
      "location",
      "ec2_versions",
      "configuration",
    ]);
    assert.deepEqual(await get("/service/name"), { status: 200, body: "mdserver" });
    assert.deepEqual(await get("/service/location"), { status: 200, body: "testzone" });
    assert.match((await get("/service/version")).body, /^\d+\.\d+\.\d+ \(\d{4}-\d{2}-\d{2}\)$/);
    const configuration = await get("/service/configuration");
    assert.match(configuration.body, /dnsmasq\.net_name=mds/);
    assert.doesNotMatch(configuration.body, /public-keys/);
  });
});

Deno.test("user-data is the guest's template rendered with md_server's variables", async () => {
  await withService(async (t) => {
    const { ipv4 } = await uploadJson(t, WEB);
    const response = await text(await t.guestFetch(ipv4, "/latest/user-data"));
    assert.equal(response.status, 200);
    assert.equal(
      response.body,
      "#cloud-config\nhostname: web01\nkey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyDefault test@default\n" +
        `ip: ${ipv4}\npassword: $6$salt$hash\nfoo: bar<&>\n`,
    );
  }, {
    ini: "[mdserver]\npassword = $6$salt$hash\n[template-data]\nfoo = bar<&>\n",
    userdata: {
      "web01.yaml": "#cloud-config\nhostname: {{hostname}}\nkey: {{public_keys['default']}}\n" +
        "ip: <%= it.ipv4 %>\npassword: {{mdserver_password}}\nfoo: {{foo}}\n",
    },
  });
});

Deno.test("a broken template is a 500 and the guest sees no partial document", async () => {
  await withService(async (t) => {
    const { ipv4 } = await uploadJson(t, WEB);
    const response = await text(await t.guestFetch(ipv4, "/latest/user-data"));
    assert.equal(response.status, 500);
    assert.doesNotMatch(response.body, /cloud-config/);
  }, { userdata: { "web01": "#cloud-config\nhostname: {{no_such_variable}}\n" } });
});

Deno.test("methods other than GET on metadata paths get 405", async () => {
  await withService(async (t) => {
    const { ipv4 } = await uploadJson(t, WEB);
    const response = await t.guestFetch(ipv4, "/latest/meta-data/", { method: "DELETE" });
    await response.body?.cancel();
    assert.equal(response.status, 405);
  });
});

Deno.test("the OpenStack listing looks user_data up without rendering it", async () => {
  await withService(async (t) => {
    const { ipv4 } = await uploadJson(t, WEB);
    const listing = await text(await t.guestFetch(ipv4, "/openstack/latest/"));
    assert.equal(listing.status, 200);
    assert.ok(listing.body.split("\n").includes("user_data"), listing.body);
    // The broken template fails where it is rendered, not in the listing.
    assert.equal((await text(await t.guestFetch(ipv4, "/openstack/latest/user_data"))).status, 500);

    const { ipv4: other } = await uploadJson(t, {
      name: "prefixed",
      uuid: "77777777-7777-4777-8777-777777777777",
      mac: "52:54:00:77:77:77",
      metadata:
        `<mdserver:userdata_prefix xmlns:mdserver="https://github.com/sjjf/md_server">missing</mdserver:userdata_prefix>`,
    });
    const without = await text(await t.guestFetch(other, "/openstack/latest/"));
    assert.ok(!without.body.split("\n").includes("user_data"), without.body);
  }, { userdata: { "web01": "#cloud-config\nhostname: {{no_such_variable}}\n" } });
});
