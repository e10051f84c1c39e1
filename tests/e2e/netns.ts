/**
 * The network namespace that plays the host: libvirtd, mdserver, dnsmasq
 * and the guests run in it (libvirt makes the bridge and the taps), and the
 * per-namespace `/etc/mdserver` (iproute2's `/etc/netns/<name>/`
 * convention) lets the hook and mdserver read the configuration where a
 * real host keeps it.
 *
 * @module
 */

import { mustRun, runCommand, sleep } from "./process.ts";

/** Arguments that run program inside the namespace (`ip netns exec`). */
export function inNamespace(namespace: string, program: string, args: string[]): [string, string[]] {
  return ["ip", ["netns", "exec", namespace, program, ...args]];
}

/** Whether a namespace of this name exists. */
export async function namespaceExists(namespace: string): Promise<boolean> {
  const result = await runCommand("ip", ["netns", "list"]);
  return result.stdout.split("\n").some((line) => line.split(" ")[0] === namespace);
}

/** Creates the namespace with its loopback up and nothing else (libvirt makes the bridge). */
export async function createNamespace(namespace: string): Promise<void> {
  await mustRun("ip", ["netns", "add", namespace]);
  await mustRun("ip", ["-n", namespace, "link", "set", "lo", "up"]);
}

/** Process ids of everything running in the namespace. */
export async function namespacePids(namespace: string): Promise<number[]> {
  const result = await runCommand("ip", ["netns", "pids", namespace]);
  if (result.code !== 0) return [];
  return result.stdout.split(/\s+/).filter((word) => /^\d+$/.test(word)).map(Number);
}

/** The command name of a process, or null when it is gone. */
export async function processName(pid: number): Promise<string | null> {
  // ps rather than /proc/<pid>/comm, which Deno only reads with --allow-all.
  const result = await runCommand("ps", ["-o", "comm=", "-p", String(pid)]);
  return result.code === 0 ? result.stdout.trim() : null;
}

/**
 * Stops every process still in the namespace (all of them were started by
 * this test, inside it), then deletes the namespace, which takes the
 * bridge and taps with it. Returns what had to be killed.
 */
export async function destroyHypervisor(namespace: string): Promise<string[]> {
  const killed: string[] = [];
  if (!(await namespaceExists(namespace))) return killed;
  for (const signal of ["TERM", "KILL"]) {
    const pids = await namespacePids(namespace);
    if (pids.length === 0) break;
    for (const pid of pids) killed.push(`${await processName(pid) ?? "?"}[${pid}] SIG${signal}`);
    await runCommand("kill", [`-${signal}`, ...pids.map(String)]);
    for (let i = 0; i < 20 && (await namespacePids(namespace)).length > 0; i++) await sleep(150);
  }
  await mustRun("ip", ["netns", "del", namespace]);
  return killed;
}

/** What `bindEtcDir` changed on the host, to be undone by `unbindEtcDir`. */
export interface EtcBinding {
  namespace: string;
  /** /etc/netns/<namespace>/<name>: write the files here. */
  dir: string;
  /** /etc/<name>, where they appear inside the namespace. */
  target: string;
  createdTarget: boolean;
  createdNetnsRoot: boolean;
}

/**
 * Makes a folder appear as `/etc/<name>` to programs run with
 * `ip netns exec <namespace>`: iproute2 bind-mounts every entry of
 * `/etc/netns/<namespace>/` over `/etc/` in their private mount namespace.
 * Returns the folder to write into. The bind needs `/etc/<name>` to exist
 * as a mount point; when the host has none, an empty folder is created and
 * removed again by `unbindEtcDir`. Nothing else on the host changes.
 */
export async function bindEtcDir(namespace: string, name: string): Promise<EtcBinding> {
  const createdNetnsRoot = !(await exists("/etc/netns"));
  const dir = `/etc/netns/${namespace}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const target = `/etc/${name}`;
  const createdTarget = !(await exists(target));
  if (createdTarget) await Deno.mkdir(target);
  return { namespace, dir, target, createdTarget, createdNetnsRoot };
}

/** Undoes `bindEtcDir`. */
export async function unbindEtcDir(binding: EtcBinding): Promise<void> {
  await Deno.remove(binding.dir, { recursive: true }).catch(() => {});
  await Deno.remove(`/etc/netns/${binding.namespace}`).catch(() => {});
  if (binding.createdNetnsRoot) await Deno.remove("/etc/netns").catch(() => {});
  // Only an empty folder that this test made (a non-empty one is not removed).
  if (binding.createdTarget) await Deno.remove(binding.target).catch(() => {});
}

/** Creates an empty folder to mount over, unless there is one; resolves with whether it made it. */
export async function makeMountPoint(path: string): Promise<boolean> {
  if (await exists(path)) return false;
  await Deno.mkdir(path);
  return true;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
