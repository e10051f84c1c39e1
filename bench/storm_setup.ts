/**
 * The boot storm's setup: a temporary configuration and KV file with
 * registered instances, and each instance's cloud-init request sequence.
 *
 * @module
 */

import { join } from "node:path";
import { type Config, loadConfig } from "../src/config/mod.ts";
import type { Instance } from "../src/store/instance.ts";
import { ec2MetadataTree } from "../src/guest_api/metadata/ec2.ts";
import { lookupPath } from "../src/guest_api/metadata/tree.ts";
import { registerDomainXml } from "../src/store/registration.ts";
import { createStore } from "../src/service/service.ts";
import { openBackend } from "../src/store/open.ts";
import { cloudInitEc2Paths, type GuestPlan } from "./load_generator.ts";
import { PROJECT_DIR } from "./server_process.ts";
import { domainXml } from "./upload_scaling.ts";

/** A temporary mdserver setup: configuration, userdata, a KV file with instances. */
export interface BenchSetup {
  dir: string;
  configFile: string;
  config: Config;
  /** Registered instances in registration (address) order. */
  instances: Instance[];
  registerSeconds: number;
  /** Each registration's time, ms, in order (the upload path: domain XML to the store). */
  registerMs: number[];
  remove(): Promise<void>;
}

/** The SSH key every bench configuration gives its instances (not a real key). */
export const PUBLIC_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkKeyOnlyNotARealKeyxxxxxxxxxxxxxx bench@mdserver";

/**
 * Writes a configuration (pool 127.90.0.0/16 on loopback, the sample
 * md_server template config/userdata/base.yaml as default_template, dnsmasq
 * not managed) and registers `count` domains into its KV file through the
 * real upload path, before any server starts.
 */
export async function prepareSetup(
  count: number,
  storeIni = "",
  progress?: (done: number, total: number) => void,
): Promise<BenchSetup> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-bench-storm-" });
  try {
    await Deno.mkdir(join(dir, "userdata"));
    await Deno.copyFile(join(PROJECT_DIR, "config/userdata/base.yaml"), join(dir, "userdata/base.yaml"));
    const configFile = join(dir, "mdserver.conf");
    await Deno.writeTextFile(
      configFile,
      `[mdserver]
listen_address = 127.0.0.1
port = 0
userdata_dir = userdata
default_template = ${join(dir, "userdata/base.yaml")}
kv_file = mdserver.kv

[admin]
socket = ${join(dir, "run", "admin.sock")}

[public-keys]
default = ${PUBLIC_KEY}

[dnsmasq]
net_address = 127.90.0.0
net_prefix = 16
gateway = 127.90.0.1
interface = lo
base_dir = dnsmasq
run_dir = run
domain = bench.test
manage = no

[configdrive]
dir = ${join(dir, "seeds")}

[service]
location = bench
${storeIni}`,
    );
    const config = await loadConfig(configFile);
    const kv = await openBackend(config);
    const instances: Instance[] = [];
    const registerMs: number[] = [];
    const started = performance.now();
    try {
      const store = createStore(kv, config);
      for (let index = 0; index < count; index++) {
        const before = performance.now();
        instances.push((await registerDomainXml(domainXml(index), { store, config })).instance);
        registerMs.push(performance.now() - before);
        if ((index + 1) % 10_000 === 0) progress?.(index + 1, count);
      }
    } finally {
      kv.close();
    }
    const registerSeconds = Math.round(performance.now() - started) / 1000;
    return {
      dir,
      configFile,
      config,
      instances,
      registerSeconds,
      registerMs,
      remove: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/** The cloud-init request sequence of an instance, crawled from its meta-data tree in memory. */
export async function planFor(config: Config, instance: Instance): Promise<GuestPlan> {
  const tree = ec2MetadataTree(config, instance);
  const paths = await cloudInitEc2Paths((path) => {
    const match = /^\/[^/]+\/meta-data(\/.*)?$/.exec(path);
    if (!match) return Promise.resolve(null);
    const found = lookupPath(tree, match[1] ?? "");
    return Promise.resolve(found.kind === "missing" ? null : found.body);
  });
  return { address: instance.ipv4, paths };
}

/** cloud-init's sequence for one guest, crawled over HTTP from the server. */
export async function crawlOverHttp(baseUrl: string, address: string): Promise<string[]> {
  const client = Deno.createHttpClient({ localAddress: address });
  try {
    return await cloudInitEc2Paths(async (path) => {
      const response = await fetch(`${baseUrl}${path}`, { client });
      const body = await response.text();
      return response.status === 200 ? body : null;
    });
  } finally {
    client.close();
  }
}
