#!/usr/bin/env -S deno run -P=e2e
/**
 * End to end with real guests: Debian bookworm (cloud-init 22.4) and trixie
 * (cloud-init 25.1) cloud images boot under QEMU on a bridge in a network
 * namespace that plays the hypervisor, get their addresses (IPv4 and IPv6)
 * from the dnsmasq that mdserver runs, and are configured by Debian's own
 * cloud-init from mdserver, each once through NoCloud (SMBIOS serial seed)
 * and once through the EC2 datasource. Inside each guest, over SSH,
 * `cloud-init status` must say done without recoverable errors.
 *
 *   deno task e2e [--accel auto|kvm|tcg] [--only FILTER[,FILTER…]] [--boot-timeout SECONDS] [--no-ipv6] [--libvirt]
 *
 * A filter is a suite (bookworm, trixie), a datasource (nocloud, ec2) or
 * one run (trixie-ec2).
 *
 * Needs root (namespaces, taps, debootstrap). Everything it starts runs in
 * the namespace `mds-e2e` and is stopped on any exit, including failure,
 * SIGINT and SIGTERM; the namespace (bridge, taps) is deleted. Logs,
 * consoles, the generated configuration and report.json stay in
 * /tmp/mdserver-e2e/run until the next run. See docs/e2e.md.
 *
 * @module
 */

import { adminCall, adminJson } from "./admin_client.ts";
import { guestDomainXml, randomMac } from "./guest_domain.ts";
import {
  addTap,
  bindEtcDir,
  createHypervisor,
  createNamespace,
  destroyHypervisor,
  type EtcBinding,
  type HypervisorNetwork,
  inNamespace,
  namespaceExists,
  namespacePids,
  processName,
  removeTap,
  unbindEtcDir,
} from "./netns.ts";
import { type Background, mustRun, runCommand, startBackground, waitFor } from "./process.ts";
import { type AccelChoice, chooseAccel, customizedDisk, overlayDisk, qemuArgs } from "./qemu.ts";
import { message, Report, ReportedError } from "./report.ts";
import { judgeCloudInitStatus } from "./cloud_init_status.ts";
import {
  domainTap,
  type Libvirt,
  libvirtDomainXml,
  mustVirsh,
  prepareLibvirtEtc,
  startLibvirtd,
  stopLibvirtd,
  virsh,
} from "./libvirt.ts";
import { DEFAULT_IPV6_PREFIX } from "../../src/config/mod.ts";
import { ipv6ForIpv4, type Ipv6Prefix, parseIpv6Prefix } from "../../src/ipam/ipv6.ts";
import { parseIpv4 } from "../../src/ipam/ipv4.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(/\/$/, "");
const CACHE_DIR = `${ROOT}/.cache/e2e`;
/** Everything of a run lives under here; the e2e and e2e-serve permission sets name it. */
const BASE = "/tmp/mdserver-e2e";
const WORK = `${BASE}/run`;
const LOCK_FILE = `${BASE}/lock`;
/** What a run changed outside BASE, so that the next run can undo it after a crash. */
const HOST_STATE = `${BASE}/host-state.json`;
const ADMIN_SOCKET = `${WORK}/admin.sock`;
const NAMESPACE = "mds-e2e";
/** mdserver's default IPv6 prefix, which the shipped config/mds-network.xml puts on the bridge. */
const IPV6 = parseIpv6Prefix(DEFAULT_IPV6_PREFIX) as Ipv6Prefix;
const NET: HypervisorNetwork = {
  namespace: NAMESPACE,
  bridge: "br-mds",
  gateway: "10.122.0.1/16",
  gateway6: `${IPV6.gateway}/64`,
  metadataAddress: "169.254.169.254",
};
/** The configuration path inside the namespace (bound from /etc/netns/mds-e2e/mdserver). */
const CONFIG_IN_NAMESPACE = "/etc/mdserver/mdserver.conf";
const GUEST_MEMORY_MIB = 1024;
const GUEST_VCPUS = 2;
const MARKER = "MDSERVER-E2E-MARKER";

type GuestKind = "nocloud" | "ec2";
type Suite = "bookworm" | "trixie";
const SUITES: Suite[] = ["bookworm", "trixie"];
const KINDS: GuestKind[] = ["nocloud", "ec2"];

/** One guest boot: a Debian suite through one datasource. */
interface GuestRun {
  suite: Suite;
  kind: GuestKind;
  /** "trixie-ec2": the report's run column, the guest's name after "e2e-". */
  label: string;
}

/** Command line options. */
interface Options {
  accel: "auto" | "kvm" | "tcg";
  runs: GuestRun[];
  bootTimeoutS: number | null;
  /** --no-ipv6: the network without its IPv6 side (`ipv6_prefix = no`), to measure what it saves. */
  ipv6: boolean;
  /**
   * --libvirt: libvirtd in the namespace defines the shipped network and
   * boots the guests (virsh define, virsh start) and runs the installed
   * hook; otherwise the test plays libvirt (bridge, taps, hook calls, qemu).
   */
  libvirt: boolean;
}

/** A built (or cached) guest image. */
interface Image {
  imageDir: string;
  manifest: Manifest;
}

/** The image build script's manifest. */
interface Manifest {
  key: string;
  kernel: string;
  cloudInit: string;
  kernelFile: string;
  initrdFile: string;
  diskFile: string;
  rootDevice: string;
  defaultUser: string;
}

/** What mdserver's admin API says about an instance (boot tracking fields are optional). */
interface InstanceView {
  uuid: string;
  name: string;
  instance_id: string;
  mac: string;
  ipv4: string;
  state: string;
  [field: string]: unknown;
}

/** Everything a guest run needs. */
interface Context {
  report: Report;
  cleanup: Cleanup;
  signal: AbortSignal;
  images: Map<Suite, Image>;
  accel: AccelChoice;
  /** Whether the network has its IPv6 side (not --no-ipv6). */
  ipv6: boolean;
  /** The namespace's libvirtd with --libvirt, else null (the test plays libvirt). */
  libvirt: Libvirt | null;
  keyFile: string;
  mdserver: Background;
  bootTimeoutMs: number;
}

const USAGE = "usage: deno task e2e [--accel auto|kvm|tcg] [--only bookworm|trixie|nocloud|ec2|SUITE-KIND[,…]] " +
  "[--boot-timeout SECONDS] [--no-ipv6] [--libvirt]";

/** Every run, bookworm first: its boot is the yardstick for trixie's. */
function allRuns(): GuestRun[] {
  return SUITES.flatMap((suite) => KINDS.map((kind) => ({ suite, kind, label: `${suite}-${kind}` })));
}

function parseOptions(args: string[]): Options {
  const options: Options = { accel: "auto", runs: allRuns(), bootTimeoutS: null, ipv6: true, libvirt: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const next = inline ?? args[++i];
      if (next === undefined) throw new TypeError(`${name} needs a value`);
      return next;
    };
    if (name === "--accel") {
      const accel = value();
      if (accel !== "auto" && accel !== "kvm" && accel !== "tcg") throw new TypeError(`--accel "${accel}"`);
      options.accel = accel;
    } else if (name === "--only") {
      const filters = value().split(",").map((filter) => filter.trim()).filter(Boolean);
      const known = new Set<string>([...SUITES, ...KINDS, ...allRuns().map((run) => run.label)]);
      const unknown = filters.filter((filter) => !known.has(filter));
      if (filters.length === 0 || unknown.length > 0) throw new TypeError(`--only "${unknown.join(",")}"`);
      options.runs = allRuns().filter((run) =>
        filters.some((filter) => filter === run.suite || filter === run.kind || filter === run.label)
      );
    } else if (name === "--boot-timeout") {
      const seconds = Number(value());
      if (!(seconds > 0)) throw new TypeError(`--boot-timeout needs a number of seconds`);
      options.bootTimeoutS = seconds;
    } else if (name === "--no-ipv6" && inline === undefined) {
      options.ipv6 = false;
    } else if (name === "--libvirt" && inline === undefined) {
      options.libvirt = true;
    } else {
      throw new TypeError(`unknown argument "${arg}"`);
    }
  }
  return options;
}

/** Cleanup actions, run once, in reverse order, whatever happens. */
class Cleanup {
  readonly #actions: { name: string; fn: () => Promise<unknown> }[] = [];
  #running: Promise<string[]> | null = null;

  add(name: string, fn: () => Promise<unknown>): void {
    this.#actions.push({ name, fn });
  }

  /** Runs every action; resolves with the failures (never throws). */
  run(): Promise<string[]> {
    this.#running ??= (async () => {
      const failures: string[] = [];
      while (this.#actions.length > 0) {
        const action = this.#actions.pop()!;
        try {
          await action.fn();
        } catch (error) {
          failures.push(`${action.name}: ${message(error)}`);
        }
      }
      return failures;
    })();
    return this.#running;
  }
}

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
    console.error("e2e: needs root (network namespaces, tap devices, debootstrap)");
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
      "processes, namespace and tap removed",
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
    await unbindEtcDir(JSON.parse(state) as EtcBinding);
    await Deno.remove(HOST_STATE);
    undone.push(`/etc/netns/${NAMESPACE}`);
  }
  if (undone.length > 0) report.check("setup", "leftovers of an earlier run removed", true, undone.join("; "));
}

async function runAll(options: Options, report: Report, cleanup: Cleanup, signal: AbortSignal): Promise<void> {
  const images = new Map<Suite, Image>();
  const imageFacts: Record<string, unknown> = {};
  for (const suite of SUITES.filter((suite) => options.runs.some((run) => run.suite === suite))) {
    say(`image: building or finding the cached ${suite} guest (tests/e2e/build_image.sh ${suite})`);
    const { imageDir, manifest, cached } = await report.phase(
      "setup",
      `image ${suite} build/cache`,
      () => buildImage(suite, signal),
      (image) =>
        `${
          image.cached ? "cached" : "built"
        } ${image.imageDir} (${image.manifest.kernel}, cloud-init ${image.manifest.cloudInit})`,
    );
    images.set(suite, { imageDir, manifest });
    imageFacts[suite] = { dir: imageDir, cached, ...manifest };
  }
  report.facts.images = imageFacts;
  const probe = images.values().next().value!;

  const accel = await report.phase(
    "setup",
    "accelerator",
    () => chooseAccel(options.accel, { kernel: `${probe.imageDir}/${probe.manifest.kernelFile}`, workDir: WORK }),
    (choice) => `${choice.accel}: ${choice.reason}`,
  );
  report.facts.accel = accel;
  const bootTimeoutMs = (options.bootTimeoutS ?? (accel.accel === "kvm" ? 180 : 600)) * 1000;

  await report.phase("setup", "runtime and keys", async () => {
    // The namespace has no route out: fetch npm packages now, outside it.
    await mustRun("deno", ["cache", "--quiet", "main.ts", "hook.ts"], { cwd: ROOT, timeoutMs: 300_000 });
    await mustRun("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mdserver-e2e", "-f", `${WORK}/id_ed25519`]);
  }, () => "deno cache main.ts hook.ts; throwaway ed25519 key");
  const keyFile = `${WORK}/id_ed25519`;
  const publicKey = (await Deno.readTextFile(`${keyFile}.pub`)).trim();

  say(`namespace: bridge br-mds with 10.122.0.1/16, ${NET.gateway6} and 169.254.169.254/32`);
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
      if (options.libvirt) await createNamespace(NAMESPACE);
      else await createHypervisor(options.ipv6 ? NET : { ...NET, gateway6: null });
      const binding = await bindEtcDir(NAMESPACE, "mdserver");
      await Deno.writeTextFile(HOST_STATE, JSON.stringify(binding));
      cleanup.add("/etc/netns binding", () => unbindEtcDir(binding));
      return binding;
    },
    () =>
      options.libvirt
        ? `${NAMESPACE}: loopback only (libvirt makes the bridge)`
        : `${NAMESPACE}: ${NET.bridge} ${NET.gateway} + ${NET.gateway6} + ${NET.metadataAddress}/32`,
  );

  const config = renderConfig(publicKey, options.ipv6);
  report.facts.ipv6 = options.ipv6 ? DEFAULT_IPV6_PREFIX : "off (--no-ipv6)";
  await Deno.writeTextFile(`${binding.dir}/mdserver.conf`, config);
  await Deno.writeTextFile(`${WORK}/mdserver.conf`, config);
  await Deno.mkdir(`${WORK}/userdata`, { recursive: true });
  await Deno.writeTextFile(`${WORK}/userdata/e2e.yaml`, USER_DATA_TEMPLATE);
  const seen = await mustRun(...inNamespace(NAMESPACE, "cat", [CONFIG_IN_NAMESPACE]));
  if (seen !== config) {
    report.check("setup", "configuration at /etc/mdserver inside the namespace", false, "bind from /etc/netns failed");
    throw new ReportedError("bind");
  }

  const libvirt = options.libvirt ? await setUpLibvirt(report, cleanup) : null;

  say("mdserver: starting inside the namespace");
  const mdserver = await report.phase(
    "setup",
    "mdserver start",
    () => startMdserver(cleanup, signal),
    () => `metadata ${NET.metadataAddress}:80, admin ${ADMIN_SOCKET}`,
  );

  const dnsmasq = await waitFor(async () => {
    for (const pid of await namespacePids(NAMESPACE)) {
      if (await processName(pid) === "dnsmasq") return pid;
    }
    return null;
  }, { timeoutMs: 10_000, signal });
  const dnsmasqOk = report.check(
    "setup",
    "dnsmasq started by mdserver (manage = yes)",
    dnsmasq !== null,
    dnsmasq !== null
      ? `dnsmasq pid ${dnsmasq} in ${NAMESPACE}`
      : `no dnsmasq process in the namespace 10 s after start; mdserver log: ${
        lastLines(mdserver.lines.filter((line) => /dnsmasq/i.test(line)), 3) ||
        "no dnsmasq lines (src/dnsmasq.ts not wired into src/service.ts?)"
      }`,
  );

  const context: Context = {
    report,
    cleanup,
    signal,
    images,
    accel,
    ipv6: options.ipv6,
    libvirt,
    keyFile,
    mdserver,
    bootTimeoutMs,
  };
  const bootToDone = new Map<string, number>();
  for (const [index, run] of options.runs.entries()) {
    if (!dnsmasqOk) {
      report.notRun(run.label, "guest boot", "no DHCP server: dnsmasq did not start (see the setup step)");
      continue;
    }
    try {
      const seconds = await guestRun(run, index, context);
      if (seconds !== null) bootToDone.set(run.label, seconds);
    } catch (error) {
      if (signal.aborted) throw error;
      if (!(error instanceof ReportedError)) report.check(run.label, "unexpected error", false, message(error));
    }
  }
  compareBootTimes(report, options.runs, bootToDone);
}

/** How much longer than bookworm's a trixie boot to cloud-init done may take, in the same run. */
const TRIXIE_BOOT_FACTOR = 1.5;

/**
 * Trixie's boot to cloud-init done against bookworm's, per datasource: a
 * boot that waits on a timeout (DHCPv6 unanswered) takes minutes longer.
 */
function compareBootTimes(report: Report, runs: GuestRun[], bootToDone: Map<string, number>): void {
  report.facts.bootToDoneSeconds = Object.fromEntries(
    [...bootToDone].map(([label, seconds]) => [label, Number(seconds.toFixed(1))]),
  );
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

/** Where `main.ts install --root` puts the files it installs, for the --libvirt run. */
const INSTALL_ROOT = `${WORK}/install-root`;

/**
 * With --libvirt: mdserver installed as a user installs it (`main.ts
 * install --root`, then its hook and network XML put where libvirtd in the
 * namespace sees /etc/libvirt and /etc/mdserver), libvirtd started in the
 * namespace, the installed network XML defined and started with virsh.
 */
async function setUpLibvirt(report: Report, cleanup: Cleanup): Promise<Libvirt> {
  say("libvirt: main.ts install --root, libvirtd in the namespace, virsh net-define + net-start");
  const libvirt = await report.phase("setup", "install, libvirtd, mds network", async () => {
    await mustRun("deno", [
      "run",
      "-q",
      "-P=install",
      `--allow-read=${INSTALL_ROOT},${ROOT}`,
      `--allow-write=${INSTALL_ROOT}`,
      "main.ts",
      "install",
      "--root",
      INSTALL_ROOT,
    ], { cwd: ROOT, timeoutMs: 120_000 });
    // The hook wrapper runs deno with DENO_DIR=<checkout>/.deno; the
    // namespace has no route out, so its npm packages are fetched now.
    await mustRun("deno", ["cache", "--quiet", "main.ts", "hook.ts"], {
      cwd: ROOT,
      env: { DENO_DIR: `${ROOT}/.deno` },
      timeoutMs: 300_000,
    });
    const etcDir = await prepareLibvirtEtc(NAMESPACE, `${INSTALL_ROOT}/etc/libvirt/hooks`);
    cleanup.add("/etc/netns libvirt", () => Deno.remove(etcDir, { recursive: true }));
    const libvirt = await startLibvirtd(NAMESPACE, WORK, etcDir);
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
  const want = [NET.gateway, `${NET.metadataAddress}/32`, NET.gateway6!];
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

async function buildImage(
  suite: Suite,
  signal: AbortSignal,
): Promise<{ imageDir: string; manifest: Manifest; cached: boolean }> {
  const started = performance.now();
  const result = await runCommand("bash", [`${ROOT}/tests/e2e/build_image.sh`, suite, CACHE_DIR], {
    inheritStderr: true,
    timeoutMs: 45 * 60_000,
    signal,
  });
  if (result.code !== 0) {
    throw new Error(
      `tests/e2e/build_image.sh ${suite} exited ${result.code}${result.timedOut ? " (timed out)" : ""}`,
    );
  }
  const imageDir = result.stdout.trim().split("\n").pop()!;
  const manifest = JSON.parse(await Deno.readTextFile(`${imageDir}/manifest.json`)) as Manifest;
  // The script says "cached" in well under a second; a build takes minutes.
  return { imageDir, manifest, cached: performance.now() - started < 5000 };
}

/** The production-like configuration: md_server's keys, the metadata address, managed dnsmasq. */
function renderConfig(publicKey: string, ipv6: boolean): string {
  return `# Generated by tests/e2e/run.ts: a production-like configuration inside
# the namespace ${NAMESPACE}, with state under ${WORK}.
[mdserver]
listen_address = ${NET.metadataAddress}
port = 80
userdata_dir = ${WORK}/userdata
default_template = ${WORK}/userdata/e2e.yaml
kv_file = ${WORK}/state/mdserver.kv
db_file = ${WORK}/state/db_file.json

[admin]
socket = ${ADMIN_SOCKET}

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
manage = yes
${ipv6 ? "# ipv6_prefix: the default" : "ipv6_prefix = no"}

[service]
location = e2e
`;
}

/**
 * The user-data every guest gets (`default_template`), in md_server's
 * syntax: the host name, a runcmd marker on the serial console, and
 * phone_home when mdserver offers a URL for it (boot tracking).
 */
const USER_DATA_TEMPLATE = `#cloud-config
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
`;

async function startMdserver(cleanup: Cleanup, signal: AbortSignal): Promise<Background> {
  const [program, args] = inNamespace(NAMESPACE, "deno", [
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
  const listening = new RegExp(`metadata listening on http://${escape(NET.metadataAddress)}(:80)?/`);
  if (!mdserver.lines.some((line) => listening.test(line))) {
    throw new Error(`metadata listener not on ${NET.metadataAddress}:80: ${lastLines(mdserver.lines, 5)}`);
  }
  return mdserver;
}

/** Boots one guest and checks it; resolves with its boot to cloud-init done in seconds (null when it got none). */
async function guestRun(spec: GuestRun, index: number, ctx: Context): Promise<number | null> {
  const { report, signal } = ctx;
  const { imageDir, manifest } = ctx.images.get(spec.suite)!;
  const { kind } = spec;
  const run = spec.label;
  const name = `e2e-${spec.label}`;
  const uuid = crypto.randomUUID();
  const mac = randomMac();
  const tap = `vnet${index}`;
  const dir = `${WORK}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const consoleLog = `${dir}/console.log`;
  const smbiosSerial = kind === "nocloud" ? `ds=nocloud;s=http://${NET.metadataAddress}/nocloud/;dsmode=net` : null;
  // panic=5: a guest kernel that panics reboots (and the boot goes on, later)
  // instead of waiting out the boot timeout. Seen once in eight boots under
  // TCG with two vCPUs: trixie's 6.12 kernel hit "Oops: int3" in
  // sched_clock_tick while patching its own code, 5 s after power-on.
  const kernelCommandLine = `console=ttyS0,115200n8 root=${manifest.rootDevice} rw panic=5`;
  const base = `${imageDir}/${manifest.diskFile}`;
  say(`${run}: guest ${name} (${mac}, cloud-init ${manifest.cloudInit})`);

  const disk = await report.phase(run, "guest disk", async () => {
    if (kind === "nocloud") {
      const path = `${dir}/disk.qcow2`;
      await overlayDisk(base, path);
      return { path, format: "qcow2" as const, detail: "qcow2 overlay over the base image; stock cloud-init config" };
    }
    const path = `${dir}/disk.raw`;
    await customizedDisk(base, path, [{ path: EC2_DATASOURCE_FILE, content: EC2_DATASOURCE_CONFIG }], dir);
    return {
      path,
      format: "raw" as const,
      detail: `copy of the base image with ${EC2_DATASOURCE_FILE}: ${
        EC2_DATASOURCE_CONFIG.trim().replace(/\s+/g, " ")
      }`,
    };
  }, (disk) => disk.detail);

  const guest = {
    name,
    uuid,
    mac,
    memoryMiB: GUEST_MEMORY_MIB,
    vcpus: GUEST_VCPUS,
    kernel: `${imageDir}/${manifest.kernelFile}`,
    initrd: `${imageDir}/${manifest.initrdFile}`,
    disk: disk.path,
    diskFormat: disk.format,
    kernelCommandLine,
    smbiosSerial,
    tap,
    consoleLog,
  };
  const xml = guestDomainXml(guest);
  await Deno.writeTextFile(`${dir}/domain.xml`, xml);

  // DHCP as dnsmasq saw it: its log is mdserver's log. Both lines name the
  // MAC (a DHCPv6 client's DUID holds it); the addresses are checked after.
  let dhcp: { at: number; line: string } | null = null;
  let dhcp6: { at: number; line: string } | null = null;
  const dhcpPattern = new RegExp(`DHCPACK\\(${NET.bridge}\\) (\\S+) ${mac}`, "i");
  const dhcp6Pattern = new RegExp(`DHCPREPLY\\(${NET.bridge}\\) (\\S+) \\S*${mac}`, "i");
  const stopWatching = ctx.mdserver.onLine((line) => {
    if (dhcp === null && dhcpPattern.test(line)) dhcp = { at: performance.now(), line };
  });
  // DHCPv6 comes after DHCPv4 (ifupdown's inet6 stanza follows the inet one), so it is watched longer.
  const stopWatching6 = ctx.mdserver.onLine((line) => {
    if (dhcp6 === null && dhcp6Pattern.test(line)) dhcp6 = { at: performance.now(), line };
  });

  let started = 0;
  let stopGuest: () => Promise<void>;
  let stopIf: () => string | null;
  let instance: InstanceView;
  const libvirt = ctx.libvirt;
  if (libvirt === null) {
    say(`${run}: hook.ts ${name} prepare begin -`);
    let hookMs = 0;
    instance = await report.phase(
      run,
      "hook upload",
      async () => {
        const result = await runHook(name, "prepare", "begin", xml);
        hookMs = result.ms;
        if (result.code !== 0 || result.stderr.trim() !== "") {
          throw new Error(`hook.ts exit ${result.code}: ${result.stderr.trim() || "(no output)"}`);
        }
        return await registered(name, mac);
      },
      (instance) =>
        `${instance.name} → ${instance.ipv4}, ${instance.instanceId} (hook process ${hookMs.toFixed(0)} ms)`,
    );
    await addTap(NET, tap);
    const [program, args] = inNamespace(
      NAMESPACE,
      "qemu-system-x86_64",
      qemuArgs({
        ...guest,
        accel: ctx.accel.accel,
        pidFile: `${dir}/qemu.pid`,
      }),
    );
    await Deno.writeTextFile(`${dir}/qemu.cmdline`, [program, ...args].join(" ") + "\n");
    say(`${run}: booting (${ctx.accel.accel}), console ${consoleLog}`);
    started = performance.now();
    const qemu = await startBackground(`qemu ${name}`, program, args, { logPath: `${dir}/qemu.log` });
    ctx.cleanup.add(`qemu ${name}`, () => qemu.stop());
    stopIf = () => qemu.exited ? `qemu exited: ${lastLines(qemu.lines, 3) || "(no output)"}` : null;
    stopGuest = async () => {
      await qemu.stop();
      await removeTap(NET, tap);
    };
  } else {
    // As a user does it: virsh define, virsh start; libvirt runs the hook.
    const domain = libvirtDomainXml({ ...guest, accel: ctx.accel.accel });
    await Deno.writeTextFile(`${dir}/libvirt-domain.xml`, domain);
    await report.phase(run, "virsh define", () => mustVirsh(NAMESPACE, ["define", `${dir}/libvirt-domain.xml`]));
    say(`${run}: virsh start ${name} (${ctx.accel.accel}), console ${consoleLog}`);
    started = performance.now();
    instance = await report.phase(
      run,
      "virsh start, hook upload",
      async () => {
        await mustVirsh(NAMESPACE, ["start", name], 120_000);
        return await registered(name, mac);
      },
      (instance) => `${instance.name} → ${instance.ipv4}, ${instance.instanceId} (the hook, run by libvirt)`,
    );
    let state = "running";
    const watcher = setInterval(async () => {
      state = (await virsh(NAMESPACE, ["domstate", name], 10_000)).stdout.trim() || "gone";
    }, 3000);
    stopIf = () => state === "running" ? null : `the domain is ${state}`;
    stopGuest = async () => {
      clearInterval(watcher);
      await virsh(NAMESPACE, ["destroy", name], 60_000);
    };
    const libvirtTap = await domainTap(NAMESPACE, name);
    report.facts[`${run} tap`] = libvirtTap;
  }
  const ipv6 = ipv6ForIpv4(IPV6, parseIpv4(instance.ipv4)!);
  report.facts[run] = {
    name,
    uuid,
    mac,
    ipv4: instance.ipv4,
    ipv6,
    instanceId: instance.instanceId,
    cloudInit: manifest.cloudInit,
  };

  const record = await Deno.readTextFile(`${WORK}/dnsmasq/dhcp-hosts/${uuid}`).catch(() => "");
  report.check(
    run,
    "DHCP reservation written for dnsmasq",
    record.includes(mac) && record.includes(instance.ipv4) && record.includes(`[${ipv6}]`) === ctx.ipv6,
    record.trim() || `no ${WORK}/dnsmasq/dhcp-hosts/${uuid}`,
  );

  const deadline = started + ctx.bootTimeoutMs;
  const seconds = (at: number) => (at - started) / 1000;
  const consoleText = () => Deno.readTextFile(consoleLog).catch(() => "");
  let bootToDone: number | null = null;

  try {
    const gotDhcp = await waitFor(() => dhcp, { timeoutMs: deadline - performance.now(), signal, stopIf })
      .catch((error) => {
        if (signal.aborted) throw error;
        report.timed(run, "boot to DHCP", null, false, message(error));
        throw new ReportedError(error);
      });
    stopWatching();
    if (gotDhcp === null) {
      report.timed(
        run,
        "boot to DHCP",
        null,
        false,
        `no DHCPACK for ${mac} from dnsmasq in ${ctx.bootTimeoutMs / 1000} s; console: ${
          lastLines(consoleLines(await consoleText()), 3)
        }`,
      );
      throw new ReportedError("no DHCP");
    }
    const offered = dhcpPattern.exec(gotDhcp.line)![1]!;
    report.timed(
      run,
      "boot to DHCP",
      seconds(gotDhcp.at),
      offered === instance.ipv4,
      gotDhcp.line.replace(/^.*?dnsmasq/i, "dnsmasq"),
    );

    const final = await waitFor(async () => {
      const match = /Cloud-init v\. \S+ finished at [^\n]*/.exec(await consoleText());
      return match ? { at: performance.now(), line: match[0].trim() } : null;
    }, { timeoutMs: Math.max(0, deadline - performance.now()), intervalMs: 500, signal, stopIf }).catch((error) => {
      if (signal.aborted) throw error;
      return { at: performance.now(), line: "", error: message(error) };
    });
    if (final === null || final.line === "") {
      const why = final && "error" in final ? final.error : `not seen in ${ctx.bootTimeoutMs / 1000} s`;
      report.timed(
        run,
        "boot to cloud-init final",
        null,
        false,
        `"Cloud-init v. … finished" ${why}; console: ${lastLines(consoleLines(await consoleText()), 3)}`,
      );
      throw new ReportedError("no final");
    }
    const panicked = (await consoleText()).includes("Kernel panic");
    report.timed(
      run,
      "boot to cloud-init final",
      seconds(final.at),
      true,
      final.line + (panicked ? " (after a guest kernel panic and a reboot: panic=5)" : ""),
    );
    bootToDone = seconds(final.at);

    const expectedDatasource = kind === "nocloud" ? "DataSourceNoCloudNet" : "DataSourceEc2";
    report.check(run, `cloud-init used ${expectedDatasource}`, final.line.includes(expectedDatasource), final.line);
    const gotDhcp6 = dhcp6 as { at: number; line: string } | null;
    report.timed(
      run,
      "boot to DHCPv6 reply",
      gotDhcp6 === null ? null : seconds(gotDhcp6.at),
      gotDhcp6 === null || dhcp6Pattern.exec(gotDhcp6.line)?.[1] === ipv6,
      gotDhcp6 === null
        ? ctx.ipv6
          ? "no DHCPv6 reply: the guest asked for none (22.4's fallback configuration does not)"
          : "no DHCPv6 reply: --no-ipv6, nobody answers"
        : gotDhcp6.line.replace(/^.*?dnsmasq/i, "dnsmasq"),
    );

    await checkAfterBoot(run, kind, ctx, {
      name,
      mac,
      dir,
      instance,
      ipv6,
      dhcpv6Answered: gotDhcp6 !== null,
      consoleText: await consoleText(),
      user: manifest.defaultUser,
    });
  } finally {
    stopWatching();
    stopWatching6();
    await stopGuest();
  }

  if (libvirt === null) {
    const release = await runHook(name, "release", "end", xml);
    const after = await adminJson<InstanceView>(ADMIN_SOCKET, `/v1/instances/${name}`).catch(() => null);
    report.check(
      run,
      "hook release end: instance stopped, address kept",
      release.code === 0 && release.stderr.trim() === "" && after?.state === "stopped" &&
        after.ipv4 === instance.ipv4,
      `hook exit ${release.code}${
        release.stderr.trim() ? `: ${release.stderr.trim()}` : ""
      }; state ${after?.state}, ${after?.ipv4}`,
    );
  } else {
    // virsh destroy made libvirt run the hook's release end.
    const after = await waitFor(async () => {
      const view = await adminJson<InstanceView>(ADMIN_SOCKET, `/v1/instances/${name}`).catch(() => null);
      return view?.state === "stopped" ? view : null;
    }, { timeoutMs: 30_000, signal });
    report.check(
      run,
      "virsh destroy: instance stopped, address kept",
      after !== null && after.ipv4 === instance.ipv4,
      after ? `state ${after.state}, ${after.ipv4}` : "not marked stopped within 30 s of virsh destroy",
    );
    await virsh(NAMESPACE, ["undefine", name]);
  }
  return bootToDone;
}

/** The instance the hook registered, checked to carry the domain's MAC. */
async function registered(name: string, mac: string): Promise<InstanceView> {
  const instance = await adminJson<InstanceView>(ADMIN_SOCKET, `/v1/instances/${name}`);
  if (instance.mac !== mac) throw new Error(`registered MAC ${instance.mac}, not ${mac}`);
  return instance;
}

/**
 * The file the Ec2 run adds to its copy of the image, as an operator would:
 * the datasource, and `strict_id: false`, without which cloud-init 23.x and
 * later log their "not AWS" warning on every new instance (a recoverable
 * error: the boot ends "degraded done" and `cloud-init status --wait` exits 2).
 */
const EC2_DATASOURCE_FILE = "/etc/cloud/cloud.cfg.d/99_mdserver-datasource.cfg";
const EC2_DATASOURCE_CONFIG = "datasource_list: [ Ec2, None ]\ndatasource:\n  Ec2:\n    strict_id: false\n";

async function checkAfterBoot(
  run: string,
  kind: GuestKind,
  ctx: Context,
  guest: {
    name: string;
    mac: string;
    dir: string;
    instance: InstanceView;
    ipv6: string;
    /** Whether dnsmasq sent this guest a DHCPv6 reply. */
    dhcpv6Answered: boolean;
    consoleText: string;
    user: string;
  },
): Promise<void> {
  const { report, signal } = ctx;
  const { user } = guest;
  const { name, instance } = guest;
  const ip = instance.ipv4;
  const log = ctx.mdserver.lines;

  // What mdserver served to this guest, from its request log.
  // Request lines read "<address> [<name>] <METHOD> <path> <status> <ms>".
  const served = (pattern: string) =>
    log.find((line) => new RegExp(`\\s${escape(ip)}(\\s\\S+)? ${pattern} 200\\s`).test(line));
  const metadataLine = kind === "nocloud"
    ? served("GET /nocloud/meta-data")
    : served("GET /[^ ]+/meta-data/instance-id");
  const userDataLine = kind === "nocloud" ? served("GET /nocloud/user-data") : served("GET /[^ /]+/user-data");
  report.check(run, "mdserver served its metadata", metadataLine !== undefined, metadataLine ?? `no 200 for ${ip}`);
  report.check(run, "mdserver served its user-data", userDataLine !== undefined, userDataLine ?? `no 200 for ${ip}`);

  // The marker and host name on the serial console.
  const markerLine = consoleLines(guest.consoleText).find((line) => line.includes(`${MARKER}-${instance.instance_id}`));
  report.check(run, "console shows the runcmd marker", markerLine !== undefined, markerLine ?? "marker not on ttyS0");
  const loginPrompt = new RegExp(`^${escape(name)} login:`, "m").test(guest.consoleText);
  const markerHost = markerLine?.includes(`host=${name}`) ?? false;
  report.check(
    run,
    "console shows the host name from user-data",
    markerHost || loginPrompt,
    [markerHost ? `runcmd saw host=${name}` : "", loginPrompt ? `"${name} login:" prompt` : ""].filter(Boolean)
      .join("; ") || "host name not on the console",
  );

  // SSH as Debian's default user, with the key from [public-keys].
  const sshOptions = [
    "-i",
    ctx.keyFile,
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    `UserKnownHostsFile=${guest.dir}/known_hosts`,
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "LogLevel=ERROR",
  ];
  let lastSsh = "";
  const hostname = await report.phase(run, "ssh", async () => {
    const answer = await waitFor(async () => {
      const result = await runCommand(
        ...inNamespace(NAMESPACE, "ssh", [...sshOptions, `${user}@${ip}`, "hostname"]),
        { timeoutMs: 20_000 },
      );
      lastSsh = (result.stderr || result.stdout).trim();
      return result.code === 0 ? result.stdout.trim() : null;
    }, { timeoutMs: 90_000, intervalMs: 2000, signal });
    if (answer === null) throw new Error(`ssh ${user}@${ip} failed for 90 s: ${lastSsh}`);
    return answer;
  }, (answer) => `ssh -i <key> ${user}@${ip} hostname → ${answer}`).catch((error) => {
    if (signal.aborted) throw error;
    return null;
  });
  if (hostname !== null) {
    report.check(run, "hostname answers the instance name", hostname === name, `"${hostname}"`);
    await checkInsideGuest(run, ctx, { ...guest, ip, sshOptions });
  } else {
    report.notRun(run, "hostname answers the instance name", "no ssh session");
    report.notRun(run, "cloud-init status: done, no recoverable errors", "no ssh session");
  }

  const neighbour = await runCommand("ip", ["-n", NAMESPACE, "neigh", "show", ip, "dev", NET.bridge]);
  report.check(
    run,
    "guest holds its reserved address (neighbour table)",
    neighbour.stdout.toLowerCase().includes(guest.mac),
    neighbour.stdout.trim() || `no neighbour entry for ${ip}`,
  );

  // The host key the guest offers.
  const scan = await runCommand(...inNamespace(NAMESPACE, "ssh-keyscan", ["-T", "10", "-t", "ed25519", ip]), {
    timeoutMs: 20_000,
  });
  const offered = scan.stdout.split("\n").map((line) => line.trim().split(/\s+/)).find((words) =>
    words[1] === "ssh-ed25519"
  );
  const offeredKey = offered ? `ssh-ed25519 ${offered[2]}` : null;
  const consoleKey = /^(ssh-ed25519 [A-Za-z0-9+/=]+)/m.exec(guest.consoleText)?.[1] ?? null;

  // Boot tracking, as the admin API reports it (issue 6).
  const view = await adminJson<InstanceView>(ADMIN_SOCKET, `/v1/instances/${name}`);
  const tracking = bootTracking(view);
  if (tracking === null) {
    const missing = "not available yet: boot tracking (issue 6) missing: GET /v1/instances/" + name +
      ` has no access/booted_at/host_keys fields (has ${Object.keys(view).join(", ")})`;
    report.check(run, "mdserver recorded the metadata and user-data fetches", false, missing);
    report.check(run, "mdserver recorded the phone-home with host keys", false, missing);
    report.check(
      run,
      "host key offered matches the phone-home one",
      false,
      `${missing}; offered ${short(offeredKey)}, console ${short(consoleKey)}`,
    );
    return;
  }
  report.check(
    run,
    "mdserver recorded the metadata and user-data fetches",
    tracking.firstMetadataAt !== null && tracking.userDataAt !== null,
    `metadata first ${tracking.firstMetadataAt}, user-data ${tracking.userDataAt}`,
  );
  const phoneHomeKey = tracking.hostKeys["ssh-ed25519"] ?? null;
  report.check(
    run,
    "mdserver recorded the phone-home with host keys",
    tracking.bootedAt !== null && Object.keys(tracking.hostKeys).length > 0,
    `booted ${tracking.bootedAt}, host keys: ${Object.keys(tracking.hostKeys).join(", ") || "none"}`,
  );
  report.check(
    run,
    "host key offered matches the phone-home one",
    offeredKey !== null && offeredKey === phoneHomeKey,
    `ssh-keyscan ${short(offeredKey)}; phone-home ${short(phoneHomeKey)}; console ${short(consoleKey)}`,
  );
}

/** What one shell command inside the guest printed, over SSH. */
async function inGuest(
  ctx: Context,
  guest: { ip: string; user: string; sshOptions: string[] },
  command: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await runCommand(
    ...inNamespace(NAMESPACE, "ssh", [...guest.sshOptions, `${guest.user}@${guest.ip}`, command]),
    { timeoutMs: 120_000, signal: ctx.signal },
  );
}

/**
 * Checks read from inside the guest: `cloud-init status` (done, no errors,
 * no recoverable errors, `--wait` exits 0), how long networking.service
 * took to start (a DHCPv6 that nobody answers holds it for minutes), and
 * the IPv6 address the guest got.
 */
async function checkInsideGuest(
  run: string,
  ctx: Context,
  guest: { ip: string; user: string; sshOptions: string[]; ipv6: string; dhcpv6Answered: boolean; dir: string },
): Promise<void> {
  const { report } = ctx;
  // --wait first: it returns when cloud-init has finished, with its exit
  // code. As the default user, without sudo: status needs no root, and sudo
  // would add "unable to resolve host" to the output where the guest's
  // host name is in neither /etc/hosts nor DNS.
  const status = await inGuest(
    ctx,
    guest,
    'cloud-init status --wait >/dev/null 2>&1; echo "@@wait $?"; ' +
      "echo @@long; cloud-init status --long 2>&1; echo @@json; cloud-init status --format json 2>/dev/null",
  );
  await Deno.writeTextFile(`${guest.dir}/cloud-init-status.txt`, status.stdout + status.stderr);
  const waitExit = Number(/^@@wait (\d+)$/m.exec(status.stdout)?.[1] ?? "-1");
  const long = /@@long\n([^]*?)@@json\n/.exec(status.stdout)?.[1]?.trim() ?? "";
  const json = status.stdout.split("@@json\n")[1] ?? "";
  const verdict = judgeCloudInitStatus(json, waitExit);
  report.facts[`${run} cloud-init status --long`] = long;
  report.check(
    run,
    "cloud-init status: done, no recoverable errors",
    verdict.ok,
    `--wait exit ${waitExit}; ${
      verdict.ok
        ? long.split("\n").filter((line) => /status|errors/.test(line)).join("; ")
        : verdict.problems.join("; ")
    }`,
  );

  const networking = await inGuest(
    ctx,
    guest,
    "systemctl show -P InactiveExitTimestampMonotonic networking.service; " +
      "systemctl show -P ActiveEnterTimestampMonotonic networking.service; " +
      "systemctl show -P ActiveState networking.service",
  );
  const [exitedAt, enteredAt, state] = networking.stdout.trim().split("\n");
  const startSeconds = (Number(enteredAt) - Number(exitedAt)) / 1e6;
  report.timed(
    run,
    "networking.service start (in the guest)",
    Number.isFinite(startSeconds) && Number(enteredAt) > 0 ? startSeconds : null,
    state === "active",
    `state ${state ?? "?"}${networking.stderr.trim() ? `; ${networking.stderr.trim()}` : ""}`,
  );

  // Whether the guest asked for DHCPv6 (25.1's fallback configuration does,
  // 22.4's does not; the network stage may have rewritten interfaces.d
  // since, so dnsmasq's reply counts too), and what it got.
  const addresses = await inGuest(
    ctx,
    guest,
    "ip -6 -o addr show scope global; echo @@eni; cat /etc/network/interfaces.d/* 2>/dev/null",
  );
  const [ipLines = "", eni = ""] = addresses.stdout.split("@@eni\n");
  const asked = guest.dhcpv6Answered || /^\s*iface\s+\S+\s+inet6\s+dhcp/m.test(eni);
  const has = ipLines.split("\n").some((line) => line.includes(` ${guest.ipv6}/`));
  const found = ipLines.trim().split("\n").map((line) => line.split(/\s+/)[3]).filter(Boolean).join(", ") || "none";
  report.check(
    run,
    "guest holds its IPv6 address when it asks for DHCPv6",
    asked ? has : true,
    `${
      guest.dhcpv6Answered
        ? "dnsmasq answered its DHCPv6"
        : asked
        ? "interfaces.d asks for inet6 dhcp"
        : "it asked for no DHCPv6"
    }; global IPv6: ${found}` +
      (asked && !has ? `; expected ${guest.ipv6}` : ""),
  );
}

/** Boot tracking fields from the admin API's instance view, wherever they are; null when absent. */
function bootTracking(view: InstanceView): {
  firstMetadataAt: string | null;
  userDataAt: string | null;
  bootedAt: string | null;
  hostKeys: Record<string, string>;
} | null {
  const source = (typeof view.access === "object" && view.access !== null ? view.access : view) as Record<
    string,
    unknown
  >;
  const known = ["first_metadata_at", "user_data_at", "booted_at", "host_keys"];
  if (!known.some((key) => key in source)) return null;
  const text = (key: string) => typeof source[key] === "string" ? source[key] as string : null;
  const keys = source.host_keys;
  return {
    firstMetadataAt: text("first_metadata_at"),
    userDataAt: text("user_data_at"),
    bootedAt: text("booted_at"),
    hostKeys: typeof keys === "object" && keys !== null ? keys as Record<string, string> : {},
  };
}

function runHook(name: string, operation: string, subOperation: string, xml: string) {
  // As libvirt runs /etc/libvirt/hooks/qemu: the shebang's `deno run -q -P=hook`, with the e2e's own admin socket
  // (the set allows /run/mdserver/admin.sock, the production path).
  // Flags replace the set's list of that kind, so the configuration is named again.
  const socket = [
    `--allow-read=${ADMIN_SOCKET},/etc/mdserver`,
    `--allow-write=${ADMIN_SOCKET}`,
    `--allow-net=127.0.0.1,unix:${ADMIN_SOCKET}`,
  ];
  return runCommand(
    ...inNamespace(NAMESPACE, "deno", [
      "run",
      "-q",
      "-P=hook",
      ...socket,
      "hook.ts",
      name,
      operation,
      subOperation,
      "-",
    ]),
    { stdin: xml, env: { MDSERVER_CONFIG: CONFIG_IN_NAMESPACE }, cwd: ROOT, timeoutMs: 15_000 },
  );
}

function consoleLines(text: string): string[] {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split(/\r?\n|\r/).map((line) => line.trim()).filter(Boolean);
}

function lastLines(lines: string[], count: number): string {
  return lines.slice(-count).join(" | ");
}

function short(key: string | null): string {
  return key === null ? "none" : `${key.slice(0, 24)}…${key.slice(-8)}`;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

if (import.meta.main) Deno.exit(await main());
