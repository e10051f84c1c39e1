/**
 * A real mdserver on loopback for integration tests: a temporary
 * configuration and userdata folder, KV in memory, listeners on free ports,
 * and clients that act as a guest by binding the guest's source address.
 *
 * @module
 */

import { join } from "node:path";
import { type Config, loadConfig } from "../src/config/mod.ts";
import { type Logger, silentLogger } from "../src/log/log.ts";
import { openKv, type RunningService, startService } from "../src/service/service.ts";
import { ConfigDriveImages } from "../src/seed/config_drive.ts";

/** A running test service and ways to talk to it. */
export interface TestService {
  config: Config;
  service: RunningService;
  dir: string;
  metadataUrl: string;
  /** The admin API's unix socket (what ctl and the hook use). */
  adminSocket: string;
  /** The admin TCP listener's URL when `adminTcp` was asked for, else null. */
  adminUrl: string | null;
  /** The admin TCP listener's token (written to `[admin] token_file`). */
  adminToken: string;
  /** A request to the admin API over its unix socket (path like "/v1/instances"). */
  adminFetch(path: string, init?: RequestInit): Promise<Response>;
  /** Fetches a metadata path as the guest with this source address. */
  guestFetch(address: string, path: string, init?: RequestInit): Promise<Response>;
  /** Uploads domain XML to /instance-upload from 127.0.0.1. */
  upload(xml: string): Promise<Response>;
  /** Uploads a domain, asserts it was accepted and returns the answer. */
  register(domain: TestDomain): Promise<Registered>;
  close(): Promise<void>;
}

/** What an accepted upload answers. */
export interface Registered {
  name: string;
  uuid: string;
  instance_id: string;
  mac: string;
  ipv4: string;
  created: boolean;
}

/** Options: INI text appended to the base configuration, and userdata files. */
export interface TestServiceOptions {
  /** Extra INI text; sections given here are merged after the base ones. */
  ini?: string;
  /** userdata_dir contents: relative path → text (a path ending in "/" is a folder). */
  userdata?: Record<string, string>;
  /** Pool network, default 127.77.0.0/16 with gateway 127.77.0.1. */
  network?: { address: string; prefix: number; gateway: string };
  /** The service's logger; default silent. */
  log?: Logger;
  /** Keep instances in the configured kv_file (as in production, so `seed-iso` can read them) instead of memory. */
  kvFile?: boolean;
  /** Also the admin TCP listener, on 127.0.0.2 with a token (off by default, as in production). */
  adminTcp?: boolean;
  /** Keep config drives (in `<dir>/seeds`) as main.ts serve does; off by default. */
  configDrives?: boolean;
  /** The store's address cache time to live, ms; default the service's. */
  addressCacheTtlMs?: number;
}

/** The admin TCP listener's address in tests: loopback, not the metadata address, not the pool. */
export const TEST_ADMIN_ADDRESS = "127.0.0.2";

/** The token tests write to `[admin] token_file`. */
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdef";

/** The base test configuration (INI text). */
export function baseConfigText(dir: string, network: { address: string; prefix: number; gateway: string }): string {
  return `[mdserver]
listen_address = 127.0.0.1
port = 0
userdata_dir = ${join(dir, "userdata")}
kv_file = ${join(dir, "mdserver.kv")}

[admin]
socket = ${join(dir, "run", "admin.sock")}
token_file = ${join(dir, "admin.token")}

[public-keys]
default = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyDefault test@default
backup = ssh-rsa AAAAB3NzaC1yc2EAAAADAQABTestKeyBackup test@backup

[dnsmasq]
net_address = ${network.address}
net_prefix = ${network.prefix}
gateway = ${network.gateway}
interface = lo
base_dir = ${join(dir, "dnsmasq")}
run_dir = ${join(dir, "run")}
domain = test.internal

[configdrive]
dir = ${join(dir, "seeds")}

[service]
location = testzone
`;
}

/** One request to an admin API over its unix socket (path like "/v1/instances"). */
export async function adminSocketFetch(socket: string, path: string, init: RequestInit = {}): Promise<Response> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const response = await fetch(`http://mdserver-admin${path}`, { ...init, client });
    return new Response(await response.arrayBuffer(), { status: response.status, headers: response.headers });
  } finally {
    client.close();
  }
}

/** Merges INI texts: keys of later sections override earlier ones. */
function mergeIni(base: string, extra: string): string {
  const sections = new Map<string, Map<string, string>>();
  for (const text of [base, extra]) {
    let current: Map<string, string> | undefined;
    for (const line of text.split("\n")) {
      const header = /^\[(.+)\]\s*$/.exec(line);
      if (header) {
        current = sections.get(header[1]!) ?? new Map();
        sections.set(header[1]!, current);
      } else if (current && /=/.test(line) && !/^\s*[#;]/.test(line)) {
        const [key, ...rest] = line.split("=");
        current.set(key!.trim(), rest.join("=").trim());
      }
    }
  }
  return [...sections].map(([name, keys]) =>
    `[${name}]\n${[...keys].map(([key, value]) => `${key} = ${value}`).join("\n")}\n`
  ).join("\n");
}

/** Starts mdserver on loopback with a temporary configuration. */
export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-test-" });
  await Deno.mkdir(join(dir, "userdata"));
  for (const [name, text] of Object.entries(options.userdata ?? {})) {
    const path = join(dir, "userdata", name);
    if (name.endsWith("/")) {
      await Deno.mkdir(path, { recursive: true });
      continue;
    }
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeTextFile(path, text);
  }
  const network = options.network ?? { address: "127.77.0.0", prefix: 16, gateway: "127.77.0.1" };
  const file = join(dir, "mdserver.conf");
  const tcp = options.adminTcp ? `[admin]\nlisten_address = ${TEST_ADMIN_ADDRESS}\nport = 0\n` : "";
  await Deno.writeTextFile(file, mergeIni(baseConfigText(dir, network), tcp + (options.ini ?? "")));
  await Deno.writeTextFile(join(dir, "admin.token"), `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
  const config = await loadConfig(file);
  // On etcd ([store] backend = etcd in `ini`) the service opens its own backend.
  const kv = config.store.backend === "etcd"
    ? null
    : options.kvFile
    ? await openKv(config)
    : await Deno.openKv(":memory:");
  const service = await startService(config, {
    log: options.log ?? silentLogger,
    ...(kv ? { kv } : {}),
    ...(options.configDrives ? { configDrives: (deps) => new ConfigDriveImages(deps) } : {}),
    ...(options.addressCacheTtlMs === undefined ? {} : { addressCacheTtlMs: options.addressCacheTtlMs }),
  });
  const metadataUrl = `http://127.0.0.1:${service.metadataPort}`;
  const adminUrl = service.adminPort === null ? null : `http://${config.admin.listenAddress}:${service.adminPort}`;
  const adminSocket = config.admin.socket!;
  const clients = new Map<string, Deno.HttpClient>();
  const socketClient = Deno.createHttpClient({ proxy: { transport: "unix", path: adminSocket } });
  return {
    config,
    service,
    dir,
    metadataUrl,
    adminSocket,
    adminUrl,
    adminToken: TEST_ADMIN_TOKEN,
    adminFetch(path, init = {}) {
      return fetch(`http://mdserver-admin${path}`, { ...init, client: socketClient });
    },
    guestFetch(address, path, init = {}) {
      let client = clients.get(address);
      if (!client) {
        client = Deno.createHttpClient({ localAddress: address });
        clients.set(address, client);
      }
      return fetch(`${metadataUrl}${path}`, { ...init, client });
    },
    upload(xml) {
      return fetch(`${metadataUrl}/instance-upload`, { method: "POST", body: xml });
    },
    async register(domain) {
      const response = await fetch(`${metadataUrl}/instance-upload`, { method: "POST", body: domainXml(domain) });
      const body = await response.json();
      if (!response.ok) throw new Error(`upload of ${domain.name} failed: ${response.status} ${JSON.stringify(body)}`);
      return body as Registered;
    },
    async close() {
      for (const client of clients.values()) client.close();
      socketClient.close();
      await service.shutdown();
      kv?.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * A copy of the service's configuration naming the ports it actually bound,
 * for clients (ctl, the hook) that read the admin endpoint from the file.
 */
export async function writeClientConfig(t: TestService): Promise<string> {
  const text = await Deno.readTextFile(join(t.dir, "mdserver.conf"));
  const bound = text
    .replace(/(\[admin\][^[]*?port = )0/, `$1${t.service.adminPort ?? 0}`)
    .replace(/(\[mdserver\][^[]*?port = )0/, `$1${t.service.metadataPort}`);
  const path = join(t.dir, "client.conf");
  await Deno.writeTextFile(path, bound);
  return path;
}

/** A domain's identity for domainXml(). */
export interface TestDomain {
  name: string;
  uuid: string;
  mac: string;
  network?: string;
  metadata?: string;
  /** More elements inside <devices> (a CD-ROM, say). */
  devices?: string;
}

/** Domain XML in the form `virsh dumpxml` prints. */
export function domainXml(domain: TestDomain): string {
  return `<domain type='kvm' id='7'>
  <name>${domain.name}</name>
  <uuid>${domain.uuid}</uuid>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
    ${domain.metadata ?? ""}
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/${domain.name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:ff:00:01'/>
      <source network='default' bridge='virbr0'/>
      <model type='virtio'/>
    </interface>
    <interface type='network'>
      <mac address='${domain.mac}'/>
      <source network='${domain.network ?? "mds"}' bridge='br-mds'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    ${domain.devices ?? ""}
  </devices>
</domain>
`;
}
