#!/usr/bin/env -S deno run -P=e2e
/**
 * End to end on real libvirt: libvirtd runs in a network namespace of the
 * test's own, mdserver is installed as an operator installs it (`install
 * --root`: the qemu hook into libvirt's hooks, the network XML, the token),
 * the shipped network is defined and started with virsh, and Debian
 * bookworm (cloud-init 22.4) and trixie (cloud-init 25.1) guests are
 * `virsh define`d and `virsh start`ed, each once through NoCloud (the
 * `<sysinfo>` from `mdserver smbios`) and once through the EC2 datasource.
 * Each guest boots twice (destroy, start again: the same address,
 * instance-id and host keys), then `virsh undefine` and `mdserver gc
 * --virsh` must make it gone (guest_run.ts).
 *
 *   deno task e2e [--accel auto|kvm|tcg] [--only FILTER[,FILTER…]] [--boot-timeout SECONDS] [--jobs N] [--no-ipv6]
 *
 * Needs root (namespaces, libvirtd, debootstrap). Everything it starts runs
 * in the namespace `mds-e2e` and is stopped on any exit, including failure,
 * SIGINT and SIGTERM; the namespace (bridge, taps) is deleted. Logs,
 * consoles, the generated configuration and report.json stay in
 * /tmp/mdserver-e2e/run until the next run. See docs/e2e.md.
 *
 * @module
 */

import { Cleanup } from "./cleanup.ts";
import { type GuestContext, guestRun, type Image } from "./guest_run.ts";
import {
  bindEtcDir,
  createNamespace,
  destroyHypervisor,
  type EtcBinding,
  inNamespace,
  makeMountPoint,
  namespaceExists,
  namespacePids,
  processName,
  unbindEtcDir,
} from "./netns.ts";
import { type Options, parseOptions, USAGE } from "./options.ts";
import { mustRun, waitFor } from "./process.ts";
import { chooseAccel } from "./qemu.ts";
import { message, Report, ReportedError } from "./report.ts";
import {
  ADMIN_SOCKET,
  BASE,
  CONFIG_IN_NAMESPACE,
  type GuestRun,
  HOST_STATE,
  INSTALL_ROOT,
  KINDS,
  LOCK_FILE,
  NAMESPACE,
  NET,
  renderConfig,
  RUN_DIR,
  SEEDS_DIR,
  SEEDS_IN_NAMESPACE,
  type Suite,
  SUITES,
  USER_DATA_TEMPLATE,
  WORK,
} from "./settings.ts";
import { lastLines } from "./text.ts";
import { buildImage, FOREIGN_HOOK_LOG, install, setUpLibvirt, startMdserver } from "./setup.ts";
import { DEFAULT_IPV6_PREFIX } from "../../src/config/mod.ts";

function say(text: string) {
  console.error(`e2e: ${text}`);
}
async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error(`e2e: ${message(error)}\n${USAGE}`);
    return 2;
  }
  if (Deno.uid() !== 0) {
    console.error("e2e: needs root (network namespaces, libvirtd, debootstrap)");
    return 1;
  }
  const report = new Report();
  const cleanup = new Cleanup();
  const controller = new AbortController();
  let interrupted: string | null = null;
  const onSignal = (signal: Deno.Signal) => {
    if (interrupted === null) {
      interrupted = signal;
      say(`${signal}: stopping and cleaning up`);
      controller.abort(new Error(`interrupted by ${signal}`));
      // If the main flow does not get there in time, clean up and leave anyway.
      setTimeout(() => forceExit(signal), 60_000);
    } else {
      forceExit(signal);
    }
  };
  const forceExit = async (signal: Deno.Signal) => {
    const failures = await cleanup.run();
    for (const failure of failures) say(`cleanup: ${failure}`);
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  };
  const listeners: [Deno.Signal, () => void][] = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => onSignal(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener];
  });

  await Deno.mkdir(BASE, { recursive: true });
  const lock = await Deno.open(LOCK_FILE, { create: true, write: true });
  try {
    await lockOrFail(lock);
    await recoverPreviousRun(report);
    await Deno.remove(WORK, { recursive: true }).catch(() => {});
    await Deno.mkdir(WORK, { recursive: true });
    report.facts.workDir = WORK;
    await runAll(options, report, cleanup, controller.signal);
  } catch (error) {
    // An interruption is reported once, below.
    if (!(error instanceof ReportedError) && !controller.signal.aborted) {
      report.check("setup", "unexpected error", false, message(error));
    }
  } finally {
    say("cleaning up");
    const failures = await cleanup.run();
    report.check(
      "cleanup",
      "libvirtd, qemu, mdserver, dnsmasq and the namespace removed",
      failures.length === 0 && !(await namespaceExists(NAMESPACE)),
      failures.length > 0 ? failures.join("; ") : String(report.facts.cleanup ?? "nothing left running"),
    );
    await Deno.remove(HOST_STATE).catch(() => {});
    lock.close();
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
  if (interrupted) {
    const last = report.steps.filter((step) => step.run !== "cleanup").at(-1);
    report.check("setup", "ran to the end", false, `interrupted by ${interrupted} after "${last?.run}: ${last?.name}"`);
  }
  report.groupByRun();
  console.log(report.table());
  const json = JSON.stringify(report.json(), null, 2);
  await Deno.writeTextFile(`${WORK}/report.json`, json + "\n").catch(() => {});
  console.log(`\nJSON report (${WORK}/report.json):\n${json}`);
  console.log(`\n${report.ok ? "PASSED" : "FAILED"}: logs and consoles in ${WORK}`);
  return interrupted === "SIGINT" ? 130 : interrupted ? 143 : report.ok ? 0 : 1;
}

async function lockOrFail(lock: Deno.FsFile): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`another e2e run holds ${LOCK_FILE}`)), 2000);
  });
  try {
    await Promise.race([lock.lock(true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Undoes what a run that was killed (SIGKILL, power loss) left behind. */
async function recoverPreviousRun(report: Report): Promise<void> {
  const undone: string[] = [];
  if (await namespaceExists(NAMESPACE)) {
    const killed = await destroyHypervisor(NAMESPACE);
    undone.push(`namespace ${NAMESPACE}${killed.length ? ` (stopped ${killed.join(", ")})` : ""}`);
  }
  const libvirtEtc = `/etc/netns/${NAMESPACE}/libvirt`;
  if (await Deno.remove(libvirtEtc, { recursive: true }).then(() => true, () => false)) undone.push(libvirtEtc);
  const state = await Deno.readTextFile(HOST_STATE).catch(() => null);
  if (state !== null) {
    await undoHostState(JSON.parse(state) as HostState);
    await Deno.remove(HOST_STATE);
    undone.push(`/etc/netns/${NAMESPACE}, /run/mdserver`);
  }
  if (undone.length > 0) report.check("setup", "leftovers of an earlier run removed", true, undone.join("; "));
}

/** What a run changed on the host outside BASE. */
interface HostState {
  binding: EtcBinding;
  /** Whether the run made the empty /run/mdserver it binds RUN_DIR over. */
  createdRunMountPoint: boolean;
  /** The empty folders it made for SEEDS_DIR's mount point (/var/lib/mdserver, …/seeds), outermost first. */
  createdSeedMountPoints?: string[];
}

async function undoHostState(state: HostState): Promise<void> {
  await unbindEtcDir(state.binding);
  // Only the empty folder this run made (a non-empty one is not removed).
  if (state.createdRunMountPoint) await Deno.remove("/run/mdserver").catch(() => {});
  for (const path of [...state.createdSeedMountPoints ?? []].reverse()) await Deno.remove(path).catch(() => {});
}

async function runAll(options: Options, report: Report, cleanup: Cleanup, signal: AbortSignal): Promise<void> {
  const images = new Map<Suite, Image>();
  const imageFacts: Record<string, unknown> = {};
  for (const suite of SUITES.filter((suite) => options.runs.some((run) => run.suite === suite))) {
    say(`image: building or finding the cached ${suite} guest (tests/e2e/build_image.sh ${suite})`);
    const { image, cached, kernel } = await report.phase(
      "setup",
      `image ${suite} build/cache`,
      () => buildImage(suite, signal),
      (built) =>
        `${
          built.cached ? "cached" : "built"
        } ${built.image.imageDir} (${built.kernel}, cloud-init ${built.image.cloudInit})`,
    );
    images.set(suite, image);
    imageFacts[suite] = { cached, kernel, ...image };
  }
  report.facts.images = imageFacts;
  const probe = images.values().next().value!;

  const accel = await report.phase(
    "setup",
    "accelerator",
    () => chooseAccel(options.accel, { kernel: `${probe.imageDir}/${probe.kernelFile}`, workDir: WORK }),
    (choice) => `${choice.accel}: ${choice.reason}`,
  );
  report.facts.accel = accel;
  const bootTimeoutMs = (options.bootTimeoutS ?? (accel.accel === "kvm" ? 180 : 600)) * 1000;

  await report.phase("setup", "install (mdserver install --root), keys", async () => {
    await install();
    await mustRun("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mdserver-e2e", "-f", `${WORK}/id_ed25519`]);
  }, () => `${INSTALL_ROOT}: the hook in etc/libvirt/hooks/qemu, etc/mdserver; npm packages cached; a throwaway key`);
  const keyFile = `${WORK}/id_ed25519`;
  const publicKey = (await Deno.readTextFile(`${keyFile}.pub`)).trim();

  const binding = await report.phase(
    "setup",
    "namespace",
    async () => {
      cleanup.add("namespace", async () => {
        const killed = await destroyHypervisor(NAMESPACE);
        report.facts.cleanup = killed.length > 0
          ? `namespace deleted; had to stop ${killed.join(", ")}`
          : "namespace deleted; nothing was left running in it";
      });
      await createNamespace(NAMESPACE);
      const binding = await bindEtcDir(NAMESPACE, "mdserver");
      const seedMountPoints: string[] = [];
      for (const path of ["/var/lib/mdserver", SEEDS_IN_NAMESPACE]) {
        if (await makeMountPoint(path)) seedMountPoints.push(path);
      }
      const state: HostState = {
        binding,
        createdRunMountPoint: await makeMountPoint("/run/mdserver"),
        createdSeedMountPoints: seedMountPoints,
      };
      await Deno.writeTextFile(HOST_STATE, JSON.stringify(state));
      cleanup.add("/etc/netns binding, /run/mdserver mount point", () => undoHostState(state));
      await Deno.mkdir(RUN_DIR, { recursive: true });
      await Deno.mkdir(SEEDS_DIR, { recursive: true });
      return binding;
    },
    () =>
      `${NAMESPACE}: loopback only (libvirt makes the bridge); inside it /etc/mdserver is /etc/netns/${NAMESPACE}/mdserver` +
      ` and /run/mdserver is ${RUN_DIR}, ${SEEDS_IN_NAMESPACE} ${SEEDS_DIR}`,
  );

  // /etc/mdserver as install left it, with the configuration edited for this host.
  await mustRun("cp", ["-a", `${INSTALL_ROOT}/etc/mdserver/.`, binding.dir]);
  const config = renderConfig(publicKey, options.ipv6);
  report.facts.ipv6 = options.ipv6 ? DEFAULT_IPV6_PREFIX : "off (--no-ipv6)";
  await Deno.writeTextFile(`${binding.dir}/mdserver.conf`, config);
  await Deno.writeTextFile(`${WORK}/mdserver.conf`, config);
  await Deno.mkdir(`${binding.dir}/userdata/e2e`, { recursive: true });
  for (const [file, content] of Object.entries(USER_DATA_TEMPLATE)) {
    await Deno.writeTextFile(`${binding.dir}/userdata/e2e/${file}`, content);
  }
  const seen = await mustRun(...inNamespace(NAMESPACE, "cat", [CONFIG_IN_NAMESPACE]));
  if (seen !== config) {
    report.check("setup", "configuration at /etc/mdserver inside the namespace", false, "bind from /etc/netns failed");
    throw new ReportedError("bind");
  }

  await setUpLibvirt(report, cleanup, options.hook);

  say("mdserver: starting inside the namespace");
  const mdserver = await report.phase(
    "setup",
    "mdserver start",
    () => startMdserver(cleanup, signal),
    () => `metadata ${NET.metadataAddress}:80, admin /run/mdserver/admin.sock (${ADMIN_SOCKET})`,
  );

  const dnsmasq = await waitFor(async () => {
    for (const pid of await namespacePids(NAMESPACE)) {
      if (await processName(pid) === "dnsmasq") return pid;
    }
    return null;
  }, { timeoutMs: 10_000, signal });
  const dnsmasqOk = report.check(
    "setup",
    "dnsmasq started by mdserver (manage = child)",
    dnsmasq !== null,
    dnsmasq !== null
      ? `dnsmasq pid ${dnsmasq} in ${NAMESPACE}`
      : `no dnsmasq process in the namespace 10 s after start; mdserver log: ${
        lastLines(mdserver.lines.filter((line) => /dnsmasq/i.test(line)), 3) || "no dnsmasq lines"
      }`,
  );
  if (!dnsmasqOk) {
    for (const run of options.runs) report.notRun(run.label, "guest boots", "no DHCP server: dnsmasq did not start");
    return;
  }

  const bootTimes = new Map<string, number>();
  const queue = [...options.runs];
  const worker = async () => {
    while (queue.length > 0 && !signal.aborted) {
      const run = queue.shift()!;
      const ctx: GuestContext = {
        report,
        signal,
        mdserver,
        bootTimeoutMs,
        image: images.get(run.suite)!,
        accel: accel.accel,
        ipv6: options.ipv6,
        keyFile,
      };
      try {
        const times = await guestRun(run, ctx);
        if (times.first !== null) bootTimes.set(run.label, times.first);
        report.facts[`${run.label} boot to done (s)`] = {
          first: times.first === null ? null : Number(times.first.toFixed(1)),
          second: times.second === null ? null : Number(times.second.toFixed(1)),
        };
      } catch (error) {
        if (signal.aborted) throw error;
        if (!(error instanceof ReportedError)) report.check(run.label, "unexpected error", false, message(error));
      }
    }
  };
  say(`guests: ${options.runs.map((run) => run.label).join(", ")}, ${options.jobs} at a time`);
  await Promise.all(Array.from({ length: Math.min(options.jobs, options.runs.length) }, worker));
  compareBootTimes(report, options.runs, bootTimes);
  if (options.hook === "qemu.d") {
    const calls = await Deno.readTextFile(FOREIGN_HOOK_LOG).catch(() => "");
    const missing = options.runs.filter((run) => !calls.includes(`e2e-${run.label} prepare begin`));
    report.check(
      "setup",
      "the host's own qemu hook ran beside mdserver's (qemu.d)",
      missing.length === 0,
      missing.length === 0
        ? `${calls.trim().split("\n").length} calls in ${FOREIGN_HOOK_LOG}`
        : `no prepare begin for ${missing.map((run) => run.label).join(", ")}`,
    );
  }
}

/** How much longer than bookworm's a trixie boot to cloud-init done may take, in the same run. */
const TRIXIE_BOOT_FACTOR = 1.5;

/**
 * Trixie's first boot to cloud-init done against bookworm's, per
 * datasource: a boot that waits on a timeout (DHCPv6 unanswered) takes
 * minutes longer.
 */
function compareBootTimes(report: Report, runs: GuestRun[], bootToDone: Map<string, number>): void {
  for (const kind of KINDS) {
    if (!runs.some((run) => run.kind === kind && run.suite === "bookworm")) continue;
    if (!runs.some((run) => run.kind === kind && run.suite === "trixie")) continue;
    const name = `trixie boot to done within ${TRIXIE_BOOT_FACTOR}x bookworm's`;
    const bookworm = bootToDone.get(`bookworm-${kind}`);
    const trixie = bootToDone.get(`trixie-${kind}`);
    if (bookworm === undefined || trixie === undefined) {
      report.notRun(kind, name, "a boot did not reach cloud-init done");
      continue;
    }
    const ratio = trixie / bookworm;
    report.check(
      kind,
      name,
      ratio <= TRIXIE_BOOT_FACTOR,
      `trixie ${trixie.toFixed(1)} s, bookworm ${bookworm.toFixed(1)} s: ${ratio.toFixed(2)}x`,
    );
  }
}

if (import.meta.main) Deno.exit(await main());
