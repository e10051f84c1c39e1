/**
 * Setting up the e2e's host: the guest images, the install (`mdserver
 * install --root`), libvirtd with the installed hook and the shipped
 * network, and mdserver itself, all in the namespace.
 *
 * @module
 */

import { adminCall } from "./admin_client.ts";
import type { Cleanup } from "./cleanup.ts";
import type { Image } from "./guest_run.ts";
import { type Libvirt, mustVirsh, prepareLibvirtEtc, startLibvirtd, stopLibvirtd, virsh } from "./libvirt.ts";
import { namespacePids, processName } from "./netns.ts";
import { type Background, mustRun, runCommand, startBackground, waitFor } from "./process.ts";
import type { Report } from "./report.ts";
import {
  ADMIN_SOCKET,
  CACHE_DIR,
  CONFIG_IN_NAMESPACE,
  inNamespaceAsHost,
  INSTALL_ROOT,
  NAMESPACE,
  NET,
  ROOT,
  type Suite,
  WORK,
} from "./settings.ts";
import { escapeRegExp, lastLines } from "./text.ts";

/**
 * `mdserver install --root INSTALL_ROOT`, as an operator installs (the
 * hook, the network XML, the token, the units, the sample configuration),
 * and the npm packages cached where the hook wrapper and the unit look
 * (`<checkout>/.deno`): the real install does that too, and the namespace
 * has no route out.
 */
export async function install(): Promise<void> {
  await mustRun("sh", ["bin/mdserver", "install", "--root", INSTALL_ROOT], { cwd: ROOT, timeoutMs: 120_000 });
  await mustRun("deno", ["cache", "--quiet", "main.ts", "hook.ts"], {
    cwd: ROOT,
    env: { DENO_DIR: `${ROOT}/.deno` },
    timeoutMs: 300_000,
  });
  // The runner's own deno cache too: mdserver and the commands run from it.
  await mustRun("deno", ["cache", "--quiet", "main.ts", "hook.ts"], { cwd: ROOT, timeoutMs: 300_000 });
}

/**
 * libvirtd in the namespace with the installed hook, and the installed
 * network XML defined and started with virsh.
 */
export async function setUpLibvirt(report: Report, cleanup: Cleanup, hook: "qemu" | "qemu.d"): Promise<Libvirt> {
  console.error(
    "e2e: libvirt: libvirtd in the namespace, virsh net-define + net-start of the installed mds-network.xml",
  );
  const libvirt = await report.phase("setup", "libvirtd, mds network", async () => {
    const etcDir = await prepareLibvirtEtc(
      NAMESPACE,
      hook === "qemu" ? `${INSTALL_ROOT}/etc/libvirt/hooks` : await besideHook(),
    );
    cleanup.add("/etc/netns libvirt", () => Deno.remove(etcDir, { recursive: true }));
    const libvirt = await startLibvirtd(NAMESPACE, WORK, etcDir, inNamespaceAsHost);
    cleanup.add("libvirtd", async () => {
      for (const name of (await virsh(NAMESPACE, ["list", "--all", "--name"])).stdout.split("\n")) {
        if (!name.trim().startsWith("e2e-")) continue;
        await virsh(NAMESPACE, ["destroy", name.trim()]);
        await virsh(NAMESPACE, ["undefine", name.trim()]);
      }
      await virsh(NAMESPACE, ["net-destroy", "mds"]);
      await virsh(NAMESPACE, ["net-undefine", "mds"]);
      await stopLibvirtd(libvirt);
    });
    await mustVirsh(NAMESPACE, ["net-define", `${INSTALL_ROOT}/etc/mdserver/mds-network.xml`]);
    await mustVirsh(NAMESPACE, ["net-start", "mds"]);
    return libvirt;
  }, () => `libvirtd in ${NAMESPACE}, hook ${INSTALL_ROOT}/etc/libvirt/hooks/qemu, network mds started`);

  const addresses = await mustRun("ip", ["-n", NAMESPACE, "-o", "addr", "show", "dev", NET.bridge]);
  const want = [NET.gateway, `${NET.metadataAddress}/32`, NET.gateway6];
  report.check(
    "setup",
    "libvirt made br-mds with the network XML's addresses",
    want.every((address) => addresses.includes(` ${address} `)),
    addresses.split("\n").map((line) => line.trim().split(/\s+/)[3]).filter(Boolean).join(", "),
  );
  const running: string[] = [];
  for (const pid of await namespacePids(NAMESPACE)) running.push((await processName(pid)) ?? "?");
  report.check(
    "setup",
    "libvirt started no dnsmasq or radvd of its own",
    !running.some((name) => /dnsmasq|radvd/.test(name)),
    `running in ${NAMESPACE}: ${running.join(", ") || "nothing"}`,
  );
  return libvirt;
}

/** Where the host's own qemu hook (with --hook qemu.d) writes its calls, one line each. */
export const FOREIGN_HOOK_LOG = `${WORK}/foreign-hook.log`;

/**
 * The hooks folder of a host that has a qemu hook of its own: that hook
 * (it writes its calls to FOREIGN_HOOK_LOG) stays, and mdserver's goes
 * beside it with `mdserver install-hook --path …/qemu.d/mdserver`, which
 * libvirt (6.5 and later) runs after the main hook.
 */
async function besideHook(): Promise<string> {
  const dir = `${WORK}/hooks-qemu.d`;
  await Deno.mkdir(`${dir}/qemu.d`, { recursive: true });
  await Deno.writeTextFile(`${dir}/qemu`, `#!/bin/sh\necho "$1 $2 $3" >> ${FOREIGN_HOOK_LOG}\nexit 0\n`, {
    mode: 0o755,
  });
  await Deno.chmod(`${dir}/qemu`, 0o755);
  await mustRun("sh", ["bin/mdserver", "install-hook", "--path", `${dir}/qemu.d/mdserver`], {
    cwd: ROOT,
    timeoutMs: 60_000,
  });
  return dir;
}

/** tests/e2e/build_image.sh SUITE: the cached image, or a new one. */
export async function buildImage(
  suite: Suite,
  signal: AbortSignal,
): Promise<{ image: Image; cached: boolean; kernel: string }> {
  const started = performance.now();
  const result = await runCommand("bash", [`${ROOT}/tests/e2e/build_image.sh`, suite, CACHE_DIR], {
    inheritStderr: true,
    timeoutMs: 45 * 60_000,
    signal,
  });
  if (result.code !== 0) {
    throw new Error(`tests/e2e/build_image.sh ${suite} exited ${result.code}${result.timedOut ? " (timed out)" : ""}`);
  }
  const imageDir = result.stdout.trim().split("\n").pop()!;
  const manifest = JSON.parse(await Deno.readTextFile(`${imageDir}/manifest.json`)) as Omit<Image, "imageDir"> & {
    kernel: string;
  };
  const { kernel, ...rest } = manifest;
  // The script says "cached" in well under a second; a build takes minutes.
  return { image: { ...rest, imageDir }, cached: performance.now() - started < 5000, kernel };
}

/** mdserver serve in the namespace, on the configuration at /etc/mdserver; resolves once it answers. */
export async function startMdserver(cleanup: Cleanup, signal: AbortSignal): Promise<Background> {
  const [program, args] = inNamespaceAsHost("deno", [
    "run",
    "-q",
    "-P=e2e-serve",
    "main.ts",
    "serve",
    "--config",
    CONFIG_IN_NAMESPACE,
  ]);
  const mdserver = await startBackground("mdserver", program, args, { logPath: `${WORK}/mdserver.log`, cwd: ROOT });
  cleanup.add("mdserver", () => mdserver.stop(10_000));
  const healthy = await waitFor(async () => {
    try {
      const answer = await adminCall(ADMIN_SOCKET, "GET", "/health", { timeoutMs: 1000 });
      return answer.status === 200 ? answer : null;
    } catch {
      return null;
    }
  }, {
    timeoutMs: 30_000,
    signal,
    stopIf: () => mdserver.exited ? `mdserver exited: ${lastLines(mdserver.lines, 5)}` : null,
  });
  if (healthy === null) throw new Error(`no answer on ${ADMIN_SOCKET} in 30 s: ${lastLines(mdserver.lines, 5)}`);
  const listening = new RegExp(`metadata listening on http://${escapeRegExp(NET.metadataAddress)}(:80)?/`);
  if (!mdserver.lines.some((line) => listening.test(line))) {
    throw new Error(`metadata listener not on ${NET.metadataAddress}:80: ${lastLines(mdserver.lines, 5)}`);
  }
  return mdserver;
}
