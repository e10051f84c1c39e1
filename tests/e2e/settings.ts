/**
 * The fixed facts of an end-to-end run: where it keeps its files, the
 * namespace and the shipped network it boots guests on, the guests' size,
 * the configuration mdserver gets and the user-data every guest receives.
 *
 * @module
 */

import { inNamespace } from "./netns.ts";
import { DEFAULT_IPV6_PREFIX } from "../../src/config/mod.ts";
import { type Ipv6Prefix, parseIpv6Prefix } from "../../src/ipam/ipv6.ts";

/** The checkout (no trailing slash). */
export const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
/** The guest images' cache (tests/e2e/build_image.sh). */
export const CACHE_DIR = `${ROOT}/.cache/e2e`;
/** Everything of a run lives under here; the e2e and e2e-serve permission sets name it. */
export const BASE = "/tmp/mdserver-e2e";
/** The run's folder: logs, consoles, configuration, report.json; kept until the next run. */
export const WORK = `${BASE}/run`;
/** Held while a run goes on. */
export const LOCK_FILE = `${BASE}/lock`;
/** What a run changed outside BASE, so that the next run can undo it after a crash. */
export const HOST_STATE = `${BASE}/host-state.json`;
/**
 * The folder that mdserver, libvirtd (and so the hook) and the mdserver
 * command see as /run/mdserver (see inNamespaceAsHost): the admin socket is
 * where production keeps it, so the hook and the command run under their
 * production permission sets unchanged.
 */
export const RUN_DIR = `${WORK}/run-mdserver`;
/**
 * The folder that mdserver, libvirtd (and so the hook) see as
 * /var/lib/mdserver/seeds, `[configdrive] dir`'s default (bound as RUN_DIR
 * is): the hook hands config drives to QEMU's user there under its
 * production permission set, which names that folder.
 */
export const SEEDS_DIR = `${WORK}/seeds`;
/** The config drive folder where production keeps it (inside the namespace's processes). */
export const SEEDS_IN_NAMESPACE = "/var/lib/mdserver/seeds";
/** Who the hook hands config drives to in the e2e (`[configdrive] qemu_user`): not root, so that the change shows. */
export const QEMU_USER = { user: "nobody", group: "nogroup" };
/** mdserver's admin socket, as the runner (outside the namespace) reaches it. */
export const ADMIN_SOCKET = `${RUN_DIR}/admin.sock`;
/** Where `mdserver install --root` puts what it installs. */
export const INSTALL_ROOT = `${WORK}/install-root`;
/** The network namespace that plays the host. */
export const NAMESPACE = "mds-e2e";
/** The configuration path inside the namespace (bound from /etc/netns/mds-e2e/mdserver). */
export const CONFIG_IN_NAMESPACE = "/etc/mdserver/mdserver.conf";

/** mdserver's default IPv6 prefix, which the shipped config/mds-network.xml puts on the bridge. */
export const IPV6 = parseIpv6Prefix(DEFAULT_IPV6_PREFIX) as Ipv6Prefix;

/** The shipped network (config/mds-network.xml) as libvirt makes it. */
export const NET = {
  bridge: "br-mds",
  gateway: "10.122.0.1/16",
  gateway6: `${IPV6.gateway}/64`,
  metadataAddress: "169.254.169.254",
} as const;

/** Guest size. */
export const GUEST_MEMORY_MIB = 1024;
/** Guest vCPUs. */
export const GUEST_VCPUS = 2;
/** What the user-data's runcmd writes to the serial console. */
export const MARKER = "MDSERVER-E2E-MARKER";

/** A Debian suite the e2e boots. */
export type Suite = "bookworm" | "trixie";
/**
 * The datasource a guest finds mdserver through: NoCloud over HTTP, EC2, or
 * the config drive mdserver keeps (and no metadata over the network).
 */
export type GuestKind = "nocloud" | "ec2" | "configdrive";
/** Every suite, bookworm first: its boot is the yardstick for trixie's. */
export const SUITES: Suite[] = ["bookworm", "trixie"];
/** Every datasource. */
export const KINDS: GuestKind[] = ["nocloud", "ec2", "configdrive"];
/**
 * The guests a run boots unless `--only` says otherwise: both suites
 * through NoCloud and EC2, and the newest client through its config drive
 * (`--only bookworm-configdrive` adds 22.4's).
 */
export const DEFAULT_RUNS = [
  "trixie-configdrive",
  "bookworm-nocloud",
  "trixie-nocloud",
  "bookworm-ec2",
  "trixie-ec2",
];

/** One guest: a Debian suite through one datasource. */
export interface GuestRun {
  suite: Suite;
  kind: GuestKind;
  /** "trixie-ec2": the report's run column, the guest's name after "e2e-". */
  label: string;
}

/**
 * The file the Ec2 guest's disk gets, as an operator would add it: the
 * datasource, and `strict_id: false`, without which cloud-init 23.x and
 * later log their "not AWS" warning on every new instance (a recoverable
 * error: the boot ends "degraded done" and `cloud-init status --wait` exits 2).
 */
export const EC2_DATASOURCE_FILE = "/etc/cloud/cloud.cfg.d/99_mdserver-datasource.cfg";
/** Its content. */
export const EC2_DATASOURCE_CONFIG = "datasource_list: [ Ec2, None ]\ndatasource:\n  Ec2:\n    strict_id: false\n";

/**
 * The same file for the config drive guest: ConfigDrive alone, so that a
 * boot that reaches done proves the drive was its only source (no network
 * datasource to fall back to).
 */
export const CONFIGDRIVE_DATASOURCE_CONFIG = "datasource_list: [ ConfigDrive, None ]\n";

/** The production-like configuration: the metadata address on port 80, managed dnsmasq on the shipped network. */
export function renderConfig(publicKey: string, ipv6: boolean): string {
  return `# Generated by tests/e2e/run.ts: a production-like configuration inside
# the namespace ${NAMESPACE}, with state under ${WORK}.
[mdserver]
listen_address = ${NET.metadataAddress}
port = 80
userdata_dir = /etc/mdserver/userdata
default_template = /etc/mdserver/userdata/e2e
kv_file = ${WORK}/state/mdserver.kv
db_file = ${WORK}/state/db_file.json

[admin]
# socket: the default, /run/mdserver/admin.sock (${RUN_DIR} on the host).

[public-keys]
e2e = ${publicKey}

[dnsmasq]
base_dir = ${WORK}/dnsmasq
run_dir = ${WORK}/dnsmasq-run
user = nobody
net_name = mds
net_address = 10.122.0.0
net_prefix = 16
gateway = 10.122.0.1
interface = ${NET.bridge}
domain = mds.test
manage = child
${ipv6 ? "# ipv6_prefix: the default" : "ipv6_prefix = no"}

[configdrive]
# dir: the default, /var/lib/mdserver/seeds (${SEEDS_DIR} on the host).
# QEMU runs as root in the e2e's libvirtd; the hook hands the images to
# another user so that the change shows.
qemu_user = ${QEMU_USER.user}:${QEMU_USER.group}

[service]
location = e2e
`;
}

/**
 * The user-data every guest gets (`default_template`, a directory of
 * parts, file name → content), in md_server's syntax: the host name, a
 * runcmd marker on the serial console, and phone_home when mdserver offers
 * a URL for it (boot tracking); the password's hash when the guest has
 * one (docs/configdrive.md's chpasswd block); then, as docs/boot-events.md tells an
 * operator whose own template serves EC2 guests (EC2 has no vendor-data),
 * a `#cloud-boothook` part that adds cloud-init's webhook reporter for
 * `{{boot_events_url}}` to the runtime configuration. NoCloud guests get
 * the same hook in the built-in vendor-data too; its marker line makes the
 * second run do nothing.
 */
export const USER_DATA_TEMPLATE: Record<string, string> = {
  "10-e2e.yaml": `#cloud-config
hostname: {{hostname}}
fqdn: {{fqdn}}
runcmd:
  - [ sh, -c, "echo ${MARKER}-{{instance_id}} host=$(hostname) > /dev/ttyS0" ]
% if get('phone_home_url', None):
phone_home:
  url: {{phone_home_url}}
  post: [ pub_key_rsa, pub_key_ecdsa, pub_key_ed25519, instance_id, hostname, fqdn ]
  tries: 10
% end
`,
  // The password \`mdserver password\` set, for the guest that has one (the config drive guest), as a hash.
  "15-password.yaml": `#cloud-config
% if get('mdserver_password_hash', None):
chpasswd:
  expire: false
  users:
    - name: debian
      password: "{{mdserver_password_hash}}"
      type: hash
% end
`,
  "20-boot-events": `#cloud-boothook
#!/bin/sh
% if get('boot_events_url', None):
f=/run/cloud-init/cloud.cfg
grep -qsxF '# mdserver boot events' "$f" ||
  printf '%s\\n' '' '# mdserver boot events' 'reporting:' '  mdserver:' '    type: webhook' '    endpoint: "{{boot_events_url}}"' '    timeout: 2' '    retries: 0' >>"$f"
% end
`,
};

/**
 * Runs program in the namespace the way the host's own services see the
 * file system: iproute2 binds /etc/netns/mds-e2e/* over /etc, RUN_DIR
 * is bound over /run/mdserver and SEEDS_DIR over /var/lib/mdserver/seeds
 * (in the process's private mount namespace,
 * which `ip netns exec` makes; nothing on the host changes but an empty
 * mount point).
 */
export function inNamespaceAsHost(program: string, args: string[]): [string, string[]] {
  return inNamespace(NAMESPACE, "sh", [
    "-c",
    `mount --bind "$0" /run/mdserver && mount --bind "$1" ${SEEDS_IN_NAMESPACE} && shift && exec "$@"`,
    RUN_DIR,
    SEEDS_DIR,
    program,
    ...args,
  ]);
}
