/**
 * mdserver and the real dnsmasq (Debian's dnsmasq-base): names answered
 * after an upload and gone after a removal, DHCP reservations and the route
 * to the metadata address in network namespaces, restarts after a crash, and
 * the unmanaged mode's reload through the pid file.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config/mod.ts";
import { dnsmasqPaths, writeDnsmasqConfig } from "../src/dnsmasq/mod.ts";
import { silentLogger } from "../src/log/log.ts";
import { type RunningService, startService } from "../src/service/service.ts";
import { dig, freePort, missingRequirement, mustRun, NamespacePair, poll, requirementTest, run } from "./_netns.ts";
import { adminSocketFetch, domainXml } from "./_harness.ts";

const DNSMASQ = "/usr/sbin/dnsmasq";
const ROOT = fileURLToPath(new URL("..", import.meta.url));

const dnsReason = await missingRequirement({
  root: true,
  tools: [DNSMASQ, "dig", "pkill"],
});
const dhcpReason = await missingRequirement({
  root: true,
  tools: [DNSMASQ, "ip", "busybox", "curl", "dig", "pkill"],
});
const syntaxReason = await missingRequirement({ tools: [DNSMASQ] });

/** A temporary folder dnsmasq may read after dropping to "nobody". */
async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-dnsmasq-" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(join(dir, "userdata"));
  return dir;
}

/** A loopback configuration: dnsmasq on 127.0.0.1:<dnsPort>, a 127.x pool, a prefix and a domain. */
async function loopbackConfig(dir: string, dnsPort: number, manage: boolean) {
  const file = join(dir, "mdserver.conf");
  await Deno.writeTextFile(
    file,
    `[mdserver]
listen_address = 127.0.0.1
port = 0
userdata_dir = userdata
kv_file = mdserver.kv

[admin]
socket = run/admin.sock

[dnsmasq]
net_address = 127.101.0.0
net_prefix = 16
gateway = 127.101.0.1
interface = lo
listen_address = 127.0.0.1
dns_port = ${dnsPort}
base_dir = dnsmasq
run_dir = run
user = nobody
prefix = vm-
domain = mds.test
entry_order = fqdn,prefix,base
manage = ${manage ? "child" : "no"}
binary = ${DNSMASQ}
`,
  );
  return await loadConfig(file);
}

async function upload(
  service: RunningService,
  xml: string,
): Promise<{ ipv4: string; created: boolean }> {
  const response = await adminSocketFetch(
    service.adminSocket!,
    `/v1/instances`,
    { method: "POST", body: xml },
  );
  const body = await response.json();
  assert.ok(
    response.ok,
    `upload failed: ${response.status} ${JSON.stringify(body)}`,
  );
  return body;
}

async function remove(
  service: RunningService,
  reference: string,
): Promise<void> {
  const response = await adminSocketFetch(
    service.adminSocket!,
    `/v1/instances/${reference}`,
    {
      method: "DELETE",
    },
  );
  await response.body?.cancel();
  assert.ok(response.ok, `DELETE ${reference}: ${response.status}`);
}

/** Whether a process exists (`kill -0`; Deno guards /proc/<pid> behind --allow-all). */
async function processExists(pid: number): Promise<boolean> {
  return (await run("kill", ["-0", String(pid)])).code === 0;
}

async function readPid(pidFile: string): Promise<number | undefined> {
  const text = await Deno.readTextFile(pidFile).catch(() => "");
  return /^\d+\s*$/.test(text) ? Number(text) : undefined;
}

/** Waits until every name answers the address (or, with null, no longer answers at all). */
async function expectNames(
  port: number,
  names: string[],
  address: string | null,
) {
  for (const name of names) {
    await poll(
      `${name} to ${address ? `answer ${address}` : "stop resolving"}`,
      async () => {
        const answer = await dig("127.0.0.1", port, name);
        if (address === null) {
          return answer.status === "NXDOMAIN" ? true : undefined;
        }
        return answer.status === "NOERROR" &&
            answer.answers.join(",") === address
          ? true
          : undefined;
      },
    );
  }
}

requirementTest(
  "dnsmasq --test accepts the generated configuration",
  syntaxReason,
  async () => {
    const dir = await tempDir();
    try {
      for (
        const extra of [
          "",
          "domain = mds.test\nuse_dns = yes\nprefix = vm-\nlisten_address = 10.122.0.1",
        ]
      ) {
        await Deno.writeTextFile(
          join(dir, "mdserver.conf"),
          `[mdserver]\nuserdata_dir = userdata\n[dnsmasq]\nbase_dir = dnsmasq\nrun_dir = run\nuser = nobody\n${extra}\n`,
        );
        const config = await loadConfig(join(dir, "mdserver.conf"));
        await writeDnsmasqConfig(config);
        const result = await run(DNSMASQ, [
          "--test",
          `--conf-file=${dnsmasqPaths(config).confFile}`,
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr + result.stdout, /syntax check OK/);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

requirementTest(
  "names resolve through dnsmasq after an upload and stop resolving after removal, without a restart",
  dnsReason,
  async () => {
    const dir = await tempDir();
    const port = freePort();
    const config = await loopbackConfig(dir, port, true);
    const kv = await Deno.openKv(":memory:");
    const service = await startService(config, { log: silentLogger, kv });
    try {
      assert.equal(service.dnsmasq?.manage, "child");
      await poll(
        "dnsmasq to answer",
        async () =>
          (await dig("127.0.0.1", port, "nothing.mds.test")).status ===
            "NXDOMAIN" || undefined,
      );
      const pid = service.dnsmasq.pid;

      const { ipv4 } = await upload(
        service,
        domainXml({ name: "web01", uuid: "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", mac: "52:54:00:10:00:01" }),
      );
      const names = ["web01", "vm-web01", "vm-web01.mds.test"];
      await expectNames(port, names, ipv4);
      const reverse = await dig("127.0.0.1", port, ipv4, { type: "PTR" });
      assert.deepEqual(reverse.answers, ["vm-web01.mds.test."]);
      assert.equal(
        service.dnsmasq.pid,
        pid,
        "dnsmasq was restarted by an upload",
      );
      assert.equal(service.dnsmasq.restarts, 0);

      await remove(service, "web01");
      await expectNames(port, names, null);
      await poll(
        "PTR to go",
        async () =>
          (await dig("127.0.0.1", port, ipv4, { type: "PTR" })).status === "NXDOMAIN" ||
          undefined,
      );
    } finally {
      const pid = service.dnsmasq?.pid;
      await service.shutdown();
      kv.close();
      if (pid) {
        assert.equal(
          await processExists(pid),
          false,
          "dnsmasq still runs after shutdown",
        );
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);

requirementTest(
  "a killed dnsmasq is started again within seconds and still answers",
  dnsReason,
  async () => {
    const dir = await tempDir();
    const port = freePort();
    const config = await loopbackConfig(dir, port, true);
    const kv = await Deno.openKv(":memory:");
    const service = await startService(config, { log: silentLogger, kv });
    try {
      const handle = service.dnsmasq!;
      const { ipv4 } = await upload(
        service,
        domainXml({ name: "db01", uuid: "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", mac: "52:54:00:10:00:02" }),
      );
      await expectNames(port, ["db01"], ipv4);
      const pidFile = dnsmasqPaths(config).pidFile;
      const first = await poll("the pid file", () => readPid(pidFile));
      assert.equal(first, handle.pid);

      Deno.kill(first, "SIGKILL");
      const second = await poll("a new dnsmasq", async () => {
        const pid = await readPid(pidFile);
        return pid !== undefined && pid !== first && pid === handle.pid ? pid : undefined;
      });
      await expectNames(port, ["db01", "vm-db01.mds.test"], ipv4);
      assert.equal(handle.restarts, 1);
      assert.equal(await processExists(first), false);
      assert.ok(await processExists(second));
    } finally {
      await service.shutdown();
      kv.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

requirementTest(
  "with manage = no, mdserver writes the records and reloads the dnsmasq named by the pid file, and ignores a stale one",
  dnsReason,
  async () => {
    const dir = await tempDir();
    const port = freePort();
    const config = await loopbackConfig(dir, port, false);
    const paths = dnsmasqPaths(config);
    const kv = await Deno.openKv(":memory:");
    // Someone else's process in a stale pid file must not be signalled.
    await Deno.mkdir(paths.runDir, { recursive: true });
    const bystander = new Deno.Command("sleep", {
      args: ["60"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await Deno.writeTextFile(paths.pidFile, `${bystander.pid}\n`);
    const service = await startService(config, { log: silentLogger, kv });
    let dnsmasq: Deno.ChildProcess | null = null;
    const lines: string[] = [];
    let reader: Promise<void> = Promise.resolve();
    try {
      assert.equal(service.dnsmasq?.manage, "no");
      assert.equal(service.dnsmasq?.pid, null);
      await upload(
        service,
        domainXml({ name: "app01", uuid: "2c3d4e5f-6071-4b8c-9d0e-1f2a3b4c5d6e", mac: "52:54:00:10:00:03" }),
      );
      await remove(service, "app01");
      assert.equal(
        await processExists(bystander.pid),
        true,
        "a stale pid file's process was signalled",
      );

      // Now "the operator's" dnsmasq, on the files mdserver wrote.
      await Deno.remove(paths.pidFile);
      dnsmasq = new Deno.Command(DNSMASQ, {
        args: [
          "--keep-in-foreground",
          "--log-facility=-",
          `--conf-file=${paths.confFile}`,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      reader = (async () => {
        for await (
          const chunk of dnsmasq.stderr.pipeThrough(new TextDecoderStream())
        ) lines.push(chunk);
      })();
      await poll(
        "dnsmasq to answer",
        async () =>
          (await dig("127.0.0.1", port, "nothing.mds.test")).status ===
            "NXDOMAIN" || undefined,
      );
      await poll("the pid file", () => readPid(paths.pidFile));

      const { ipv4 } = await upload(
        service,
        domainXml({ name: "app02", uuid: "3d4e5f60-7182-4c9d-8e0f-2a3b4c5d6e7f", mac: "52:54:00:10:00:04" }),
      );
      await expectNames(port, ["app02", "vm-app02.mds.test"], ipv4);
      // dnsmasq logs "cleared cache" when it starts and when it takes SIGHUP.
      const reloads = () => lines.join("").split("cleared cache").length - 1;
      const before = reloads();
      assert.equal(before, 1, "an upload needs no reload");
      await remove(service, "app02");
      await expectNames(port, ["app02"], null);
      await poll(
        "dnsmasq to be reloaded",
        () => reloads() > before || undefined,
      );
    } finally {
      await service.shutdown();
      kv.close();
      bystander.kill("SIGKILL");
      await bystander.status;
      if (dnsmasq) {
        dnsmasq.kill("SIGTERM");
        await dnsmasq.status;
        await reader;
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);

requirementTest(
  "with manage = yes, a dnsmasq left running from before is stopped and replaced at start",
  dnsReason,
  async () => {
    const dir = await tempDir();
    const port = freePort();
    const config = await loopbackConfig(dir, port, true);
    const paths = dnsmasqPaths(config);
    // What a crashed mdserver leaves behind: its dnsmasq, holding the port.
    await writeDnsmasqConfig(config);
    const orphan = new Deno.Command(DNSMASQ, {
      args: ["--keep-in-foreground", `--conf-file=${paths.confFile}`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let service: RunningService | null = null;
    const kv = await Deno.openKv(":memory:");
    try {
      await poll("the orphan's pid file", async () => await readPid(paths.pidFile) === orphan.pid || undefined);
      service = await startService(config, { log: silentLogger, kv });
      // dnsmasq exits cleanly on SIGTERM.
      assert.deepEqual({ ...await orphan.status }, { success: true, code: 0, signal: null });
      const { ipv4 } = await upload(
        service,
        domainXml({ name: "new01", uuid: "6071829a-3b4c-4d5e-8f60-718293a4b5c6", mac: "52:54:00:10:00:05" }),
      );
      await expectNames(port, ["new01"], ipv4);
      assert.equal(await readPid(paths.pidFile), service.dnsmasq?.pid);
    } finally {
      await service?.shutdown();
      kv.close();
      try {
        orphan.kill("SIGKILL");
      } catch {
        // stopped, as it should be
      }
      await orphan.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** The udhcpc script: prints what the server offered and configures the interface and routes. */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    echo "lease ip=$ip mask=$mask router=$router dns=$dns domain=$domain hostname=$hostname lease=$lease"
    echo "staticroutes=$staticroutes"
    echo "msstaticroutes=$msstaticroutes"
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    set -- $staticroutes
    while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    ;;
esac
`;

/** What one udhcpc run got: the printed lease lines, or null when it got no lease. */
async function requestLease(
  pair: NamespacePair,
  script: string,
  mac: string,
): Promise<Record<string, string> | null> {
  await mustRun("ip", [
    "-n",
    pair.client,
    "addr",
    "flush",
    "dev",
    pair.clientIf,
  ]);
  await mustRun("ip", [
    "-n",
    pair.client,
    "link",
    "set",
    pair.clientIf,
    "address",
    mac,
  ]);
  const result = await pair.run(pair.client, "busybox", [
    "udhcpc",
    "-i",
    pair.clientIf,
    "-f", // foreground
    "-q", // quit once bound
    "-n", // exit when no lease
    "-t",
    "3",
    "-T",
    "1",
    "-O",
    "staticroutes",
    "-O",
    "msstaticroutes",
    "-s",
    script,
  ]);
  if (result.code !== 0) return null;
  const values: Record<string, string> = {};
  for (const line of result.stdout.split("\n")) {
    if (line.startsWith("lease ")) {
      for (const [, key, value] of line.slice(6).matchAll(/(\w+)=(\S*)/g)) {
        values[key!] = value!;
      }
    } else if (/^(ms)?staticroutes=/.test(line)) {
      const [key, value] = line.split(/=(.*)/s, 2) as [string, string];
      values[key] = value;
    }
  }
  return values;
}

requirementTest(
  "in network namespaces a guest's MAC gets its reserved address and the route to the metadata address; unknown and removed MACs get nothing",
  dhcpReason,
  async () => {
    const dir = await tempDir();
    const pair = await NamespacePair.create();
    let server: Deno.ChildProcess | null = null;
    const log: string[] = [];
    let logReader: Promise<void> = Promise.resolve();
    try {
      // Server side as on a KVM host: the gateway and the metadata address on
      // the guests' link.
      await mustRun("ip", [
        "-n",
        pair.server,
        "addr",
        "add",
        "10.199.0.1/24",
        "dev",
        pair.serverIf,
      ]);
      await mustRun("ip", [
        "-n",
        pair.server,
        "addr",
        "add",
        "169.254.169.254/32",
        "dev",
        pair.serverIf,
      ]);
      await mustRun("ip", [
        "-n",
        pair.server,
        "link",
        "set",
        pair.serverIf,
        "up",
      ]);
      await mustRun("ip", [
        "-n",
        pair.client,
        "link",
        "set",
        pair.clientIf,
        "up",
      ]);
      const script = join(dir, "udhcpc.sh");
      await Deno.writeTextFile(script, UDHCPC_SCRIPT, { mode: 0o755 });
      await Deno.writeTextFile(
        join(dir, "mdserver.conf"),
        `[mdserver]
listen_address = 169.254.169.254
port = 80
userdata_dir = userdata
kv_file = mdserver.kv

[admin]
socket = run/admin.sock

[dnsmasq]
net_address = 10.199.0.0
net_prefix = 24
gateway = 10.199.0.1
interface = ${pair.serverIf}
base_dir = dnsmasq
run_dir = run
user = nobody
domain = mds.test
use_dns = yes
lease_len = 600
manage = child
binary = ${DNSMASQ}
`,
      );

      // The whole mdserver runs in the server namespace, as `mdserver serve`
      // does on a host, so dnsmasq is its child there; the test calls the
      // admin API with curl inside that namespace.
      const [cmd, args] = pair.exec(pair.server, Deno.execPath(), [
        "run",
        "-P=test",
        join(ROOT, "main.ts"),
        "serve",
        "--config",
        join(dir, "mdserver.conf"),
      ]);
      server = new Deno.Command(cmd, {
        args,
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const decode = (stream: ReadableStream<Uint8Array>) =>
        (async () => {
          for await (
            const chunk of stream.pipeThrough(new TextDecoderStream())
          ) log.push(chunk);
        })();
      logReader = Promise.all([decode(server.stdout), decode(server.stderr)])
        .then(() => {});
      const admin = async (method: string, path: string, body?: string) => {
        const args = ["-sS", "--max-time", "10", "-X", method];
        if (body !== undefined) {
          await Deno.writeTextFile(join(dir, "body.xml"), body);
          args.push("--data-binary", `@${join(dir, "body.xml")}`);
        }
        args.push("-w", "\n%{http_code}", "--unix-socket", join(dir, "run", "admin.sock"), `http://mdserver${path}`);
        const { stdout } = await pair.run(pair.server, "curl", args);
        const end = stdout.lastIndexOf("\n");
        return {
          status: Number(stdout.slice(end + 1)),
          text: stdout.slice(0, end),
        };
      };
      await poll(
        "mdserver's admin socket",
        async () => (await admin("GET", "/health")).status === 200 || undefined,
        {
          timeoutMs: 30_000,
        },
      );
      const pidFile = join(dir, "run", "mds.pid");
      const dnsmasqPid = await poll(
        "dnsmasq's pid file",
        () => readPid(pidFile),
      );

      const macA = "52:54:00:20:00:01";
      const first = await admin(
        "POST",
        "/v1/instances",
        domainXml({ name: "guest01", uuid: "4e5f6071-8293-4a0b-9c1d-3b4c5d6e7f80", mac: macA }),
      );
      assert.equal(first.status, 201, first.text);
      const reserved = JSON.parse(first.text).ipv4 as string;
      assert.match(reserved, /^10\.199\.0\.\d+$/);

      const lease = await requestLease(pair, script, macA);
      assert.ok(lease, "the guest's MAC got no lease");
      assert.equal(lease.ip, reserved);
      assert.equal(lease.mask, "24");
      assert.equal(lease.router, "10.199.0.1");
      assert.equal(lease.dns, "10.199.0.1");
      assert.equal(lease.domain, "mds.test");
      assert.equal(lease.hostname, "guest01");
      assert.equal(lease.lease, "600");
      assert.equal(
        lease.staticroutes,
        "169.254.169.254/32 10.199.0.1 0.0.0.0/0 10.199.0.1",
      );
      assert.equal(lease.msstaticroutes, lease.staticroutes);

      // The route works: the guest asks the metadata service who it is.
      const metadata = await pair.run(pair.client, "curl", [
        "-sS",
        "--max-time",
        "10",
        "http://169.254.169.254/latest/meta-data/local-ipv4",
      ]);
      assert.equal(metadata.stdout, reserved, metadata.stderr);

      assert.equal(
        await requestLease(pair, script, "52:54:00:20:00:99"),
        null,
        "an unknown MAC got a lease",
      );

      // The domain is redefined with a new MAC: it keeps the address, and
      // dnsmasq gives it although it still remembers the old MAC's lease.
      const macB = "52:54:00:20:00:02";
      const again = await admin(
        "POST",
        "/v1/instances",
        domainXml({ name: "guest01", uuid: "5f607182-93a4-4b1c-8d2e-4c5d6e7f8091", mac: macB }),
      );
      assert.equal(again.status, 201, again.text);
      assert.equal(JSON.parse(again.text).ipv4, reserved);
      const redefined = await requestLease(pair, script, macB);
      const guestName = () => dig("10.199.0.1", 53, "guest01.mds.test", { netns: pair.server });
      assert.deepEqual(await guestName(), { status: "NOERROR", answers: [reserved] });
      assert.equal(
        redefined?.ip,
        reserved,
        "the redefined domain did not get its address",
      );
      assert.equal(
        await requestLease(pair, script, macA),
        null,
        "the old MAC still got a lease",
      );

      // Removal makes dnsmasq forget the guest: the MAC is unknown again.
      const removed = await admin("DELETE", "/v1/instances/guest01");
      assert.equal(removed.status, 200, removed.text);
      assert.equal(
        await requestLease(pair, script, macB),
        null,
        "a removed instance still got a lease",
      );
      // Its name is gone too, although dnsmasq had leased it under that name.
      await poll(
        "the removed guest's name to stop resolving",
        async () => (await guestName()).status === "NXDOMAIN" || undefined,
      );

      // Shutdown stops dnsmasq.
      const currentPid = await readPid(pidFile);
      server.kill("SIGTERM");
      assert.equal((await server.status).code, 0);
      server = null;
      for (const pid of new Set([dnsmasqPid, currentPid])) {
        if (pid) {
          assert.equal(
            await processExists(pid),
            false,
            `dnsmasq ${pid} still runs after shutdown`,
          );
        }
      }
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\n--- mdserver's log ---\n${log.join("").slice(-6000)}`,
        {
          cause: error,
        },
      );
    } finally {
      if (server) {
        try {
          server.kill("SIGKILL");
        } catch {
          // exited already
        }
        await server.status;
      }
      await pair.cleanup();
      await logReader;
      await Deno.remove(dir, { recursive: true });
    }
  },
);
