/**
 * Trying to escape the production service: mdserver runs exactly as its
 * unit runs it — `deno run -P=serve` as an unprivileged user holding only
 * CAP_NET_BIND_SERVICE — in its own mount and network namespace, where
 * /etc/mdserver is a test folder and /var/lib and /run are empty tmpfs.
 * A user-data template (standing in for any code-execution bug) tries to
 * run programs, change the network with `ip`, write outside the data
 * folder, read /etc/shadow and connect elsewhere; the harness tries the
 * admin API as `nobody` over the socket and over TCP. Each is refused, and
 * the service keeps serving.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./_process.ts";
import { missingRequirement, mustRun, poll, requirementTest, run } from "./_netns.ts";
import { domainXml } from "./_harness.ts";

const SERVICE_USER = "daemon";
const GUEST = { name: "web01", uuid: "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", mac: "52:54:00:12:34:56" };
const CAPS = "-all,+net_bind_service";

const reason = await missingRequirement({
  root: true,
  tools: ["unshare", "nsenter", "setpriv", "mount", "ip", "curl"],
});

const CONFIG = `[mdserver]
listen_address = 169.254.169.254
port = 80
userdata_dir = /etc/mdserver/userdata
default_template = /etc/mdserver/userdata/escape.yaml
kv_file = /var/lib/mdserver/mdserver.kv
legacy_upload = no
# The guest is simulated on lo (10.99.0.0/24 is local here), where no neighbour entry exists.
verify_mac = no

[admin]
socket = /run/mdserver/admin.sock
listen_address = 127.0.0.1
port = 8774

[public-keys]
default = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEscapeTestKey test@escape

[dnsmasq]
net_address = 10.99.0.0
net_prefix = 24
gateway = 10.99.0.1
interface = lo
base_dir = /var/lib/mdserver/dnsmasq
run_dir = /run/mdserver
manage = unit
`;

/** Inside the namespaces: private mounts, loopback with the metadata and guest addresses, then the unit's user and capabilities. */
function namespaceScript(dir: string, denoDir: string): string {
  const deno = [Deno.execPath(), "run", "--cached-only", "--frozen", "-P=serve", "--config", join(ROOT, "deno.json")];
  return `set -e
mount --make-rprivate /
mkdir -p /etc/mdserver
mount --bind ${dir}/etc /etc/mdserver
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /var/lib/mdserver /run/mdserver /run/credentials/mdserver.service
chown ${SERVICE_USER}: /var/lib/mdserver /run/mdserver
cp ${dir}/etc/admin.token /run/credentials/mdserver.service/admin-token
chown ${SERVICE_USER}: /run/credentials/mdserver.service/admin-token
chmod 0400 /run/credentials/mdserver.service/admin-token
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
ip route add local 10.99.0.0/24 dev lo
cd /
exec setpriv --reuid=${SERVICE_USER} --regid=${SERVICE_USER} --clear-groups --no-new-privs \\
  --inh-caps=${CAPS} --ambient-caps=${CAPS} --bounding-set=${CAPS} \\
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DENO_DIR=${denoDir} DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 \\
  CREDENTIALS_DIRECTORY=/run/credentials/mdserver.service \\
  ${deno.join(" ")} ${join(ROOT, "main.ts")} serve --config /etc/mdserver/mdserver.conf
`;
}

requirementTest(
  "the production service, under its unit's permissions, refuses every escape and keeps serving",
  reason,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "mdserver-escape-" });
    const tmpTarget = `/tmp/mdserver-escaped-${crypto.randomUUID().slice(0, 8)}`;
    let server: Deno.ChildProcess | null = null;
    const stderr: string[] = [];
    try {
      await Deno.chmod(dir, 0o755);
      await Deno.mkdir(join(dir, "etc", "userdata"), { recursive: true });
      await Deno.writeTextFile(join(dir, "etc", "mdserver.conf"), CONFIG);
      const template = await Deno.readTextFile(join(ROOT, "tests", "escape", "escape.yaml"));
      await Deno.writeTextFile(
        join(dir, "etc", "userdata", "escape.yaml"),
        template.replace("@TMP_TARGET@", tmpTarget),
      );
      const token = crypto.randomUUID() + crypto.randomUUID();
      await Deno.writeTextFile(join(dir, "etc", "admin.token"), `${token}\n`, { mode: 0o600 });
      await Deno.chmod(join(dir, "etc", "admin.token"), 0o600);
      // The npm packages where the service user can read them (install caches them in <app>/.deno).
      const denoDir = join(dir, "deno");
      const cached = await new Deno.Command(Deno.execPath(), {
        args: ["cache", "--frozen", join(ROOT, "main.ts")],
        env: { DENO_DIR: denoDir },
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(cached.code, 0, new TextDecoder().decode(cached.stderr));
      await mustRun("chmod", ["-R", "a+rX", denoDir]);

      server = new Deno.Command("unshare", {
        args: ["--mount", "--net", "bash", "-c", namespaceScript(dir, denoDir)],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const pid = server.pid;
      server.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({ write: (chunk) => void stderr.push(chunk) }),
      ).catch(() => {});
      const inside = (args: string[]) => run("nsenter", ["-t", String(pid), "-m", "-n", ...args]);
      const asNobody = (args: string[]) =>
        inside(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--no-new-privs", ...args]);
      const log = () => stderr.join("");

      await poll("the service listening", async () => {
        const health = await inside([
          "curl",
          "-sf",
          "--unix-socket",
          "/run/mdserver/admin.sock",
          "http://mdserver/health",
        ]);
        return health.code === 0 ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 }).catch((error) => {
        throw new Error(`${error.message}\n${log()}`);
      });

      // root uploads over the socket; the guest fetches its user-data twice (connections report on the second).
      const xml = join(dir, "web01.xml");
      await Deno.writeTextFile(xml, domainXml(GUEST));
      await Deno.chmod(xml, 0o644);
      const upload = await inside([
        "curl",
        "-s",
        "--unix-socket",
        "/run/mdserver/admin.sock",
        "--data-binary",
        `@${xml}`,
        "http://mdserver/v1/instances",
      ]);
      const ipv4 = JSON.parse(upload.stdout).ipv4 as string;
      // User-data is kept while its template and folder are unchanged (answers prepared ahead); this template
      // reports what its earlier render started, so the folder changes before each fetch to have it rendered again.
      let fetches = 0;
      const userData = async () => {
        await Deno.writeTextFile(join(dir, "etc", "userdata", "fetch"), String(fetches++));
        const result = await inside(["curl", "-s", "--interface", ipv4, "http://169.254.169.254/latest/user-data"]);
        const line = /^# ESCAPE (.*)$/m.exec(result.stdout);
        assert.ok(line, `no report in user-data: ${result.stdout}\n${log()}`);
        return JSON.parse(line[1]!) as Record<string, string>;
      };
      await userData();
      let report = await userData();
      for (let i = 0; i < 20 && Object.values(report).includes("pending"); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        report = await userData();
      }

      for (const [attempt, outcome] of Object.entries(report)) {
        if (attempt.startsWith("ip ")) {
          // `ip` runs (verify_mac reads the neighbour table) but without CAP_NET_ADMIN changes nothing.
          assert.match(outcome, /^(refused: |allowed: exit [1-9])/, `${attempt}: ${outcome}`);
        } else {
          assert.match(outcome, /^refused: (NotCapable|PermissionDenied)$/, `${attempt}: ${outcome}`);
        }
      }
      assert.equal(Object.keys(report).length, 19, JSON.stringify(report));
      const links = await inside(["ip", "-o", "link", "show"]);
      assert.doesNotMatch(links.stdout, /escape0/);
      assert.match(links.stdout, /lo: <LOOPBACK,UP/);
      const addresses = await inside(["ip", "-o", "addr", "show", "dev", "lo"]);
      assert.doesNotMatch(addresses.stdout, /10\.99\.0\.250/);
      const neighbours = await inside(["ip", "neigh", "show"]);
      assert.doesNotMatch(neighbours.stdout, /10\.99\.0\.251/);
      await assert.rejects(() => Deno.stat(tmpTarget), Deno.errors.NotFound);
      await assert.rejects(() => Deno.stat(join(dir, "etc", "escaped")), Deno.errors.NotFound);

      // nobody: the socket refuses to connect, TCP answers 401 without the token, and the token is unreadable.
      const socket = await asNobody([
        "curl",
        "-s",
        "--unix-socket",
        "/run/mdserver/admin.sock",
        "http://mdserver/v1/instances",
      ]);
      assert.equal(socket.code, 7, `nobody reached the admin socket: ${socket.stdout}`);
      for (const path of ["/v1/instances", `/v1/instances/${GUEST.name}/user-data`]) {
        const tcp = await asNobody(["curl", "-s", "-w", "\n%{http_code}", `http://127.0.0.1:8774${path}`]);
        assert.match(tcp.stdout, /\n401$/, `nobody over TCP: ${tcp.stdout}`);
      }
      const remove = await asNobody([
        "curl",
        "-s",
        "-w",
        "\n%{http_code}",
        "-X",
        "DELETE",
        `http://127.0.0.1:8774/v1/instances/${GUEST.name}`,
      ]);
      assert.match(remove.stdout, /\n401$/);
      const readToken = await asNobody(["cat", "/etc/mdserver/admin.token"]);
      assert.notEqual(readToken.code, 0, "nobody read the admin token");
      // md_server's upload is off in the production configuration, for everyone local.
      const legacy = await asNobody([
        "curl",
        "-s",
        "-w",
        "\n%{http_code}",
        "--data-binary",
        `@${xml}`,
        "http://169.254.169.254/instance-upload",
      ]);
      assert.match(legacy.stdout, /\n404$/);
      // root with the token gets through TCP.
      const withToken = await inside([
        "curl",
        "-s",
        "-w",
        "\n%{http_code}",
        "-H",
        `authorization: Bearer ${token}`,
        "http://127.0.0.1:8774/health",
      ]);
      assert.match(withToken.stdout, /\n200$/);

      // Still serving: the guest's metadata, and the instance is there.
      const instanceId = await inside([
        "curl",
        "-s",
        "--interface",
        ipv4,
        "http://169.254.169.254/latest/meta-data/instance-id",
      ]);
      assert.equal(instanceId.stdout, "i-6f1a3c2e5b7d4e8f9a0b1c2d3e4f5a6b");
      const listed = await inside([
        "curl",
        "-s",
        "--unix-socket",
        "/run/mdserver/admin.sock",
        "http://mdserver/v1/instances",
      ]);
      assert.equal(JSON.parse(listed.stdout).length, 1);
    } finally {
      if (server) {
        try {
          server.kill("SIGTERM");
        } catch {
          // gone
        }
        await server.status;
      }
      await Deno.remove(tmpTarget).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
);
