/**
 * Real libvirt for the end-to-end test: libvirtd runs inside the test's
 * network namespace, with its own `/etc/libvirt` (iproute2's
 * `/etc/netns/<name>/libvirt` is bound over it for everything started with
 * `ip netns exec`), holding the settings libvirtd needs in a container and
 * the qemu hook as `main.ts install --root` writes it. The shipped network
 * XML is defined and started with virsh, and guests are defined and
 * started with virsh, so libvirt itself runs the hook, creates the bridge
 * and the taps, and runs qemu.
 *
 * @module
 */

import { inNamespace } from "./netns.ts";
import { mustRun, runCommand, sleep } from "./process.ts";

/** What qemu.conf needs for libvirtd to run qemu inside a container (no cgroups, no security driver). */
export const CONTAINER_QEMU_CONF = `# Written by the end-to-end test (tests/e2e/libvirt.ts).
security_driver = "none"
user = "root"
group = "root"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
remember_owner = 0
# libvirt leaves file owners alone (QEMU runs as root here and reads any
# file): a config drive's owner is then the hook's doing, which the test
# checks ([configdrive] qemu_user). With the default, libvirt would give
# the image to QEMU's user (root) itself when the domain starts.
dynamic_ownership = 0
`;

/** A libvirtd of the test's own, inside its namespace. */
export interface Libvirt {
  namespace: string;
  pidFile: string;
  /** The `/etc/netns/<namespace>/libvirt` folder that libvirtd sees as /etc/libvirt. */
  etcDir: string;
}

/**
 * Prepares `/etc/netns/<namespace>/libvirt`: a copy of the host's
 * /etc/libvirt (as the packages installed it) with the container settings
 * in qemu.conf, no networks or domains of its own, and the files of
 * `hooksDir` (the `etc/libvirt/hooks` that `main.ts install --root` wrote).
 */
export async function prepareLibvirtEtc(namespace: string, hooksDir: string): Promise<string> {
  const etcDir = `/etc/netns/${namespace}/libvirt`;
  await Deno.remove(etcDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(`/etc/netns/${namespace}`, { recursive: true });
  await mustRun("cp", ["-a", "/etc/libvirt", etcDir]);
  // Nothing of the host's: no autostarted default network, no domains.
  await Deno.remove(`${etcDir}/qemu`, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${etcDir}/qemu/networks/autostart`, { recursive: true });
  await Deno.remove(`${etcDir}/hooks`, { recursive: true }).catch(() => {});
  await mustRun("cp", ["-a", hooksDir, `${etcDir}/hooks`]);
  await Deno.writeTextFile(`${etcDir}/qemu.conf`, CONTAINER_QEMU_CONF);
  return etcDir;
}

/** Runs virsh against the namespace's libvirtd. */
export async function virsh(namespace: string, args: string[], timeoutMs = 60_000) {
  return await runCommand(...inNamespace(namespace, "virsh", ["-q", "-c", "qemu:///system", ...args]), {
    timeoutMs,
  });
}

/** Runs virsh and throws with its output unless it succeeds. */
export async function mustVirsh(namespace: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const result = await virsh(namespace, args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(`virsh ${args.join(" ")} failed (${result.code}): ${(result.stderr || result.stdout).trim()}`);
  }
  return result.stdout;
}

/**
 * Starts libvirtd inside the namespace (`command` says how: the arguments
 * it gets are libvirtd's) and waits until virsh gets an answer.
 */
export async function startLibvirtd(
  namespace: string,
  workDir: string,
  etcDir: string,
  command: (program: string, args: string[]) => [string, string[]],
): Promise<Libvirt> {
  const pidFile = `${workDir}/libvirtd.pid`;
  await mustRun(...command("libvirtd", ["--daemon", "--pid-file", pidFile]));
  for (let i = 0; i < 100; i++) {
    if ((await virsh(namespace, ["version"], 5_000)).code === 0) return { namespace, pidFile, etcDir };
    await sleep(200);
  }
  throw new Error("libvirtd gave no answer in 20 s");
}

/** Stops libvirtd (SIGTERM to its pid, then SIGKILL) and waits for it to go. */
export async function stopLibvirtd(libvirt: Libvirt): Promise<void> {
  const text = await Deno.readTextFile(libvirt.pidFile).catch(() => "");
  if (!/^\d+\s*$/.test(text)) return;
  const pid = text.trim();
  for (const signal of ["TERM", "KILL"]) {
    await runCommand("kill", [`-${signal}`, pid]);
    for (let i = 0; i < 50; i++) {
      if ((await runCommand("kill", ["-0", pid])).code !== 0) return;
      await sleep(100);
    }
  }
}

/** A random locally administered MAC in libvirt's 52:54:00 range. */
export function randomMac(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return ["52", "54", "00", ...[...bytes].map((byte) => byte.toString(16).padStart(2, "0"))].join(":");
}

/** What libvirt should boot. */
export interface LibvirtGuest {
  name: string;
  uuid: string;
  mac: string;
  memoryMiB: number;
  vcpus: number;
  kernel: string;
  initrd: string;
  kernelCommandLine: string;
  disk: string;
  diskFormat: "raw" | "qcow2";
  /** The `<sysinfo>` element (from `mdserver smbios NAME`), or null for none. */
  sysinfo: string | null;
  consoleLog: string;
  accel: "kvm" | "tcg";
}

/** The domain XML a user would `virsh define` for the guest, on the shipped `mds` network. */
export function libvirtDomainXml(guest: LibvirtGuest): string {
  const sysinfo = guest.sysinfo === null ? "" : guest.sysinfo.trim().split("\n").map((line) => `  ${line}\n`).join("");
  const smbios = guest.sysinfo === null ? "" : "    <smbios mode='sysinfo'/>\n";
  return `<domain type='${guest.accel === "kvm" ? "kvm" : "qemu"}'>
  <name>${escapeXml(guest.name)}</name>
  <uuid>${guest.uuid}</uuid>
  <memory unit='MiB'>${guest.memoryMiB}</memory>
  <vcpu>${guest.vcpus}</vcpu>
${sysinfo}  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${escapeXml(guest.kernel)}</kernel>
    <initrd>${escapeXml(guest.initrd)}</initrd>
    <cmdline>${escapeXml(guest.kernelCommandLine)}</cmdline>
${smbios}  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='${guest.accel === "kvm" ? "host-passthrough" : "maximum"}'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='${guest.diskFormat}'/>
      <source file='${escapeXml(guest.disk)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='${guest.mac}'/>
      <source network='mds'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='${escapeXml(guest.consoleLog)}'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='${escapeXml(guest.consoleLog)}'/>
      <target type='serial' port='0'/>
    </console>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
  </devices>
</domain>
`;
}

/** The tap libvirt gave the domain's interface (`virsh domiflist`), or null. */
export async function domainTap(namespace: string, name: string): Promise<string | null> {
  const result = await virsh(namespace, ["domiflist", name]);
  const line = result.stdout.split("\n").map((text) => text.trim().split(/\s+/)).find((words) => words[2] === "mds");
  return line?.[0] ?? null;
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("'", "&apos;")
    .replaceAll('"', "&quot;");
}
