/**
 * One guest's life, as an operator goes through it on a libvirt host:
 *
 * 1. its disk (an overlay, or for Ec2 a copy with the datasource setting),
 *    for NoCloud its `<sysinfo>` from `mdserver smbios NAME`, `virsh define`;
 * 2. `virsh start`: DHCP, fetches, `mdserver wait` and the boot done from
 *    cloud-init's own events, phone-home, `cloud-init status` done, the
 *    host name, and SSH checked against `mdserver known-hosts`;
 * 3. `virsh destroy`: mdserver marks it stopped and keeps its address;
 * 4. `virsh start` again: a new boot, done again (the first kept in the
 *    history), the same address, instance-id and host keys (SSH with the
 *    first boot's known_hosts), cloud-init done again;
 * 5. `virsh destroy`, `virsh undefine`, `mdserver gc --virsh`: gone, its
 *    address and DHCP record released.
 *
 * @module
 */

import { type BootContext, type Booted, bootGuest } from "./guest_boot.ts";
import { checkBootOutcome } from "./boot_outcome.ts";
import {
  checkInsideGuest,
  inGuest,
  neighbourCheck,
  offeredHostKey,
  servedLine,
  sshHostname,
  type SshTarget,
} from "./guest_checks.ts";
import { getInstance, type InstanceView } from "./instance_view.ts";
import { libvirtDomainXml, mustVirsh, randomMac, virsh } from "./libvirt.ts";
import { addConfigDrive, addSysinfo, gcVirsh, knownHosts, registerWithPassword } from "./mdserver_cli.ts";
import { checkConfigDriveGuest, checkDriveOwner, getsFrom } from "./configdrive_checks.ts";
import { waitFor } from "./process.ts";
import { customizedDisk, overlayDisk } from "./qemu.ts";
import { message, ReportedError } from "./report.ts";
import {
  CONFIGDRIVE_DATASOURCE_CONFIG,
  EC2_DATASOURCE_CONFIG,
  EC2_DATASOURCE_FILE,
  GUEST_MEMORY_MIB,
  GUEST_VCPUS,
  type GuestRun,
  IPV6,
  MARKER,
  NAMESPACE,
  QEMU_USER,
  SEEDS_DIR,
  SEEDS_IN_NAMESPACE,
  WORK,
} from "./settings.ts";
import { consoleLines, escapeRegExp, short } from "./text.ts";
import { ipv6ForIpv4 } from "../../src/ipam/ipv6.ts";
import { parseIpv4 } from "../../src/ipam/ipv4.ts";

/** A built (or cached) guest image and its manifest. */
export interface Image {
  imageDir: string;
  kernelFile: string;
  initrdFile: string;
  diskFile: string;
  rootDevice: string;
  defaultUser: string;
  cloudInit: string;
}

/** What a guest run needs of the whole run. */
export interface GuestContext extends BootContext {
  image: Image;
  accel: "kvm" | "tcg";
  /** Whether the network has its IPv6 side. */
  ipv6: boolean;
  keyFile: string;
}

/** Seconds from `virsh start` to cloud-init done, per boot (null: not reached). */
export interface BootTimes {
  first: number | null;
  second: number | null;
}

const SECOND = "2nd boot: ";

/** The last guest's gc; the next one waits for it. */
let gcTurn: Promise<unknown> = Promise.resolve();

/** Runs the guest through its two boots, gc and all; every outcome is in the report. */
export async function guestRun(spec: GuestRun, ctx: GuestContext): Promise<BootTimes> {
  const { report } = ctx;
  const run = spec.label;
  const name = `e2e-${spec.label}`;
  const mac = randomMac();
  const dir = `${WORK}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const consoleLog = `${dir}/console.log`;
  const times: BootTimes = { first: null, second: null };
  console.error(`e2e: ${run}: guest ${name} (${mac}, cloud-init ${ctx.image.cloudInit})`);

  const domainXml = await report.phase(
    run,
    "guest disk and domain XML",
    async () => {
      const base = `${ctx.image.imageDir}/${ctx.image.diskFile}`;
      const disk = spec.kind === "nocloud" ? `${dir}/disk.qcow2` : `${dir}/disk.raw`;
      if (spec.kind === "nocloud") await overlayDisk(base, disk);
      else await customizedDisk(base, disk, [{ path: EC2_DATASOURCE_FILE, content: datasourceConfig(spec) }], dir);
      return libvirtDomainXml({
        name,
        uuid: crypto.randomUUID(),
        mac,
        memoryMiB: GUEST_MEMORY_MIB,
        vcpus: GUEST_VCPUS,
        kernel: `${ctx.image.imageDir}/${ctx.image.kernelFile}`,
        initrd: `${ctx.image.imageDir}/${ctx.image.initrdFile}`,
        // panic=5: a guest kernel that panics reboots (and the boot goes on,
        // later) instead of waiting out the boot timeout. Seen once in eight
        // boots under TCG with two vCPUs: trixie's 6.12 kernel hit "Oops:
        // int3" in sched_clock_tick while patching its own code.
        kernelCommandLine: `console=ttyS0,115200n8 root=${ctx.image.rootDevice} rw panic=5`,
        disk,
        diskFormat: spec.kind === "nocloud" ? "qcow2" : "raw",
        sysinfo: null,
        consoleLog,
        accel: ctx.accel,
      });
    },
    () =>
      spec.kind === "nocloud"
        ? "qcow2 overlay over the base image (stock cloud-init configuration)"
        : `copy of the base image with ${EC2_DATASOURCE_FILE}: ${datasourceConfig(spec).trim().replace(/\s+/g, " ")}`,
  );
  await Deno.writeTextFile(`${dir}/domain.xml`, domainXml);
  await report.phase(run, "virsh define", () => mustVirsh(NAMESPACE, ["define", `${dir}/domain.xml`]));
  if (spec.kind === "nocloud") {
    // The stock image finds mdserver through the SMBIOS serial that
    // `mdserver smbios NAME --xml` prints, added as the README says.
    const defined = await report.phase(
      run,
      "<sysinfo> from mdserver smbios --xml, virsh define",
      () => addSysinfo(name, dir),
      (xml) => /<entry name='serial'>([^<]*)<\/entry>/.exec(xml)?.[1] ?? "",
    );
    report.check(
      run,
      "the domain has the <sysinfo> and <smbios mode='sysinfo'/>",
      /<os>[^]*<smbios mode='sysinfo'\/>[^]*<\/os>/.test(defined) && /<sysinfo type='smbios'>/.test(defined),
      `virsh dumpxml --inactive ${name}: ${defined.includes("<sysinfo") ? "<sysinfo>" : "no <sysinfo>"}, ${
        defined.includes("<smbios mode='sysinfo'/>") ? "<smbios mode='sysinfo'/>" : "no <smbios>"
      }`,
    );
  }

  // The config drive guest: its <disk> from `mdserver configdrive`, and
  // registered before its first start so that the password its first boot
  // sets can be given (cloud-init sets passwords once per instance).
  const password = spec.kind === "configdrive" ? randomPassword() : null;
  if (password !== null) {
    const defined = await report.phase(
      run,
      "config drive <disk> from mdserver configdrive, virsh define",
      () => addConfigDrive(name, dir),
      (xml) => /<source file='([^']*\.iso)'/.exec(xml)?.[1] ?? "no .iso source",
    );
    report.check(
      run,
      "the domain has a CD-ROM whose source is its own image under [configdrive] dir",
      new RegExp(`<source file='${SEEDS_IN_NAMESPACE}/[0-9a-f-]{36}\\.iso'`).test(defined),
      /<disk type='file' device='cdrom'>[^]*?<\/disk>/.exec(defined)?.[0].replace(/\s+/g, " ") ?? "no cdrom",
    );
    await report.phase(
      run,
      "mdserver register, mdserver password --stdin (before the first start)",
      () => registerWithPassword(name, password, dir),
      (output) => output.split("\n").slice(1).join("; "),
    );
  }

  const guest = {
    run,
    name,
    mac,
    kind: spec.kind,
    consoleLog,
    ipv6For: (ipv4: string) => ipv6ForIpv4(IPV6, parseIpv4(ipv4)!),
  };
  const target = (ip: string): SshTarget => ({
    ip,
    user: ctx.image.defaultUser,
    keyFile: ctx.keyFile,
    knownHostsFile: `${dir}/known_hosts`,
    signal: ctx.signal,
  });

  // First boot.
  let first: Booted;
  let firstKey: string | null = null;
  let firstSeq: number | null = null;
  try {
    first = await bootGuest(ctx, guest, "");
    times.first = first.bootToDone;
    firstSeq = await checkBootOutcome(report, run, "", name, { ...first, fetches: password === null }, null);
    report.facts[run] = {
      name,
      uuid: first.instance.uuid,
      mac,
      ipv4: first.instance.ipv4,
      ipv6: guest.ipv6For(first.instance.ipv4),
      instanceId: first.instance.instanceId,
      cloudInit: ctx.image.cloudInit,
    };
    firstKey = await checkFirstBoot(ctx, run, dir, first, target(first.instance.ipv4), password);
  } catch (error) {
    await destroy(name);
    if (ctx.signal.aborted) throw error;
    if (!(error instanceof ReportedError)) report.check(run, "unexpected error", false, message(error));
    return times;
  }
  // `virsh destroy` pulls the plug: what the guest wrote in the last half
  // minute may not be on its disk (seen: trixie's host keys, written by
  // cloud-init 30 s before, were empty files at the next boot and sshd did
  // not start). An operator would shut down; the test syncs, then destroys.
  await inGuest(target(first.instance.ipv4), "sync", 60_000).catch(() => {});
  await destroyChecked(ctx, run, "virsh destroy: instance stopped, address kept", name, first.instance);
  await Deno.rename(consoleLog, `${dir}/console-1.log`).catch(() => {});

  // Second boot: the same instance.
  try {
    const second = await bootGuest(ctx, guest, SECOND);
    times.second = second.bootToDone;
    await checkBootOutcome(report, run, SECOND, name, { ...second, fetches: password === null }, firstSeq ?? 0);
    await checkSecondBoot(ctx, run, dir, first, second, firstKey, target(second.instance.ipv4), password);
  } catch (error) {
    if (ctx.signal.aborted) {
      await destroy(name);
      throw error;
    }
    if (!(error instanceof ReportedError)) report.check(run, `${SECOND}unexpected error`, false, message(error));
  }
  await destroyChecked(ctx, run, `${SECOND}virsh destroy: instance stopped, address kept`, name, first.instance);

  // Gone: undefine, gc.
  // One at a time: gc is about every instance, and whether --force is
  // needed depends on what the other guests have defined meanwhile.
  const gc = gcTurn.then(() =>
    report.phase(run, "virsh undefine, mdserver gc --virsh", async () => {
      await mustVirsh(NAMESPACE, ["undefine", name]);
      const remaining = (await mustVirsh(NAMESPACE, ["list", "--all", "--name"])).split("\n").filter((line) =>
        line.trim()
      );
      return await gcVirsh(remaining.length === 0);
    }, (output) => output.trim().split("\n").at(-1) ?? "")
  ).catch(() => null);
  gcTurn = gc;
  await gc;
  const after = await getInstance(name).catch((error) => error as Error);
  const record = await Deno.readTextFile(`${WORK}/dnsmasq/dhcp-hosts/${first.instance.uuid}`).catch(() => null);
  report.check(
    run,
    "gc --virsh: instance gone, DHCP record removed",
    after === null && record === null,
    `${
      after === null ? "GET /v1/instances/" + name + " 404" : after instanceof Error ? after.message : "still there"
    }; ${record === null ? "no dhcp-hosts record" : `dhcp-hosts still holds ${record.trim()}`}`,
  );
  return times;
}

/** Checks after the first boot; returns the ed25519 host key it phoned home. */
async function checkFirstBoot(
  ctx: GuestContext,
  run: string,
  dir: string,
  booted: Booted,
  ssh: SshTarget,
  password: string | null,
): Promise<string | null> {
  const { report } = ctx;
  const { instance } = booted;
  const ip = instance.ipv4;
  const name = instance.name;

  const record = await Deno.readTextFile(`${WORK}/dnsmasq/dhcp-hosts/${instance.uuid}`).catch(() => "");
  const ipv6 = ipv6ForIpv4(IPV6, parseIpv4(ip)!);
  report.check(
    run,
    "DHCP reservation written for dnsmasq",
    record.includes(instance.mac) && record.includes(ip) && record.includes(`[${ipv6}]`) === ctx.ipv6,
    record.trim() || `no ${WORK}/dnsmasq/dhcp-hosts/${instance.uuid}`,
  );

  const log = ctx.mdserver.lines;
  if (password === null) {
    const metadataLine = run.endsWith("nocloud")
      ? servedLine(log, ip, "GET /nocloud/meta-data")
      : servedLine(log, ip, "GET /[^ ]+/meta-data/instance-id");
    const userDataLine = run.endsWith("nocloud")
      ? servedLine(log, ip, "GET /nocloud/user-data")
      : servedLine(log, ip, "GET /[^ /]+/user-data");
    report.check(run, "mdserver served its metadata", metadataLine !== undefined, metadataLine ?? `no 200 for ${ip}`);
    report.check(run, "mdserver served its user-data", userDataLine !== undefined, userDataLine ?? `no 200 for ${ip}`);
  } else {
    const gets = getsFrom(log, ip);
    report.check(
      run,
      "mdserver served it nothing over HTTP: the drive was its only source",
      gets.length === 0,
      gets.length === 0 ? `no GET from ${ip} in mdserver's log` : gets.slice(0, 3).join("; "),
    );
  }

  const lines = consoleLines(booted.consoleText);
  const markerLine = lines.find((line) => line.includes(`${MARKER}-${instance.instanceId}`));
  report.check(run, "console shows the runcmd marker", markerLine !== undefined, markerLine ?? "marker not on ttyS0");

  // Boot tracking, as the admin API reports it, and the known_hosts file
  // `mdserver known-hosts` prints from it.
  const view = (await getInstance(name)) ?? instance;
  const fetched = view.firstMetadataAt !== null && view.userDataAt !== null;
  report.check(
    run,
    password === null ? "mdserver recorded the metadata and user-data fetches" : "mdserver recorded no fetch",
    password === null ? fetched : view.firstMetadataAt === null && view.userDataAt === null,
    `metadata first ${view.firstMetadataAt}, user-data ${view.userDataAt}`,
  );
  const phoneHomeKey = view.hostKeys["ssh-ed25519"] ?? null;
  report.check(
    run,
    "mdserver recorded the phone-home with host keys",
    view.bootedAt !== null && Object.keys(view.hostKeys).length > 0,
    `booted ${view.bootedAt}, host keys: ${Object.keys(view.hostKeys).join(", ") || "none"}; state ${view.bootState}`,
  );
  const hosts = await knownHosts().catch((error) => `# ${message(error)}\n`);
  const ours = hosts.split("\n").filter((line) => line.split(" ")[0]?.split(",").includes(ip));
  await Deno.writeTextFile(ssh.knownHostsFile, ours.join("\n") + (ours.length ? "\n" : ""));
  report.check(
    run,
    "mdserver known-hosts lists the guest's host keys",
    ours.length > 0 && ours.every((line) => line.split(" ")[0]!.split(",").includes(name)),
    ours.length > 0 ? `${ours.length} lines for ${ours[0]!.split(" ")[0]}` : `none for ${ip}: ${hosts.trim()}`,
  );

  await sshChecks(ctx, run, "", dir, booted, ssh, phoneHomeKey, password);
  return phoneHomeKey;
}

/** Checks after the second boot: the same address, instance-id and host keys. */
async function checkSecondBoot(
  ctx: GuestContext,
  run: string,
  dir: string,
  first: Booted,
  second: Booted,
  firstKey: string | null,
  ssh: SshTarget,
  password: string | null,
): Promise<void> {
  const { report } = ctx;
  report.check(
    run,
    `${SECOND}same address and instance-id`,
    second.instance.ipv4 === first.instance.ipv4 && second.instance.instanceId === first.instance.instanceId &&
      second.instance.uuid === first.instance.uuid,
    `${second.instance.ipv4}, ${second.instance.instanceId} (first boot: ${first.instance.ipv4}, ${first.instance.instanceId})`,
  );
  const view = await getInstance(second.instance.name);
  report.facts[`${run} ${SECOND}state`] = view === null ? "gone" : {
    bootState: view.bootState,
    firstMetadataAt: view.firstMetadataAt,
    userDataAt: view.userDataAt,
    bootedAt: view.bootedAt,
  };
  // The known_hosts file is the first boot's: SSH succeeding checks the host keys were kept.
  await sshChecks(ctx, run, SECOND, dir, second, ssh, firstKey, password);
}

/** SSH (strict, against the known_hosts file), host name, the checks inside, neighbour, host key. */
async function sshChecks(
  ctx: GuestContext,
  run: string,
  prefix: string,
  dir: string,
  booted: Booted,
  ssh: SshTarget,
  phoneHomeKey: string | null,
  password: string | null,
): Promise<void> {
  const { report } = ctx;
  const step = (text: string) => prefix + text;
  const name = booted.instance.name;
  const loginPrompt = new RegExp(`^${escapeRegExp(name)} login:`, "m").test(booted.consoleText);
  const hostname = await sshHostname(report, run, step("ssh, host key checked against known-hosts"), ssh);
  report.check(
    run,
    step("hostname answers the instance name"),
    hostname === name,
    `ssh: ${hostname === null ? "no session" : `"${hostname}"`}; console: ${
      loginPrompt ? `"${name} login:" prompt` : "no login prompt with the name"
    }`,
  );
  if (hostname !== null) {
    await checkInsideGuest(report, run, prefix, ssh, {
      instance: booted.instance,
      ipv6: ipv6ForIpv4(IPV6, parseIpv4(ssh.ip)!),
      dhcpv6Answered: booted.dhcpv6Answered,
      dir,
      // The OpenStack family's instance-id (ConfigDrive) is the domain's UUID.
      instanceId: password === null ? booted.instance.instanceId : booted.instance.uuid,
    });
    if (password !== null) {
      await checkConfigDriveGuest(report, run, prefix, ssh, { password, delivered: prefix === "" });
      await checkDriveOwner(report, run, prefix, `${SEEDS_DIR}/${booted.instance.uuid}.iso`, QEMU_USER);
    }
  } else {
    report.notRun(run, step("cloud-init status: done, no recoverable errors"), "no ssh session");
  }
  const neighbour = await neighbourCheck(ssh.ip, booted.instance.mac);
  report.check(run, step("guest holds its reserved address (neighbour table)"), neighbour.ok, neighbour.detail);
  const offered = await offeredHostKey(ssh.ip);
  report.check(
    run,
    step(
      prefix ? "host key offered is the first boot's phone-home one" : "host key offered matches the phone-home one",
    ),
    offered !== null && offered === phoneHomeKey,
    `ssh-keyscan ${short(offered)}; phone-home ${short(phoneHomeKey)}`,
  );
}

/** `virsh destroy`, then the hook's `release end` must leave the instance stopped with its address. */
async function destroyChecked(
  ctx: GuestContext,
  run: string,
  step: string,
  name: string,
  before: InstanceView,
): Promise<void> {
  await destroy(name);
  const after = await waitFor(async () => {
    const view = await getInstance(name).catch(() => null);
    return view?.state === "stopped" ? view : null;
  }, { timeoutMs: 30_000, signal: ctx.signal });
  ctx.report.check(
    run,
    step,
    after !== null && after.ipv4 === before.ipv4,
    after ? `state ${after.state}, ${after.ipv4}` : "not marked stopped within 30 s of virsh destroy",
  );
}

async function destroy(name: string): Promise<void> {
  await virsh(NAMESPACE, ["destroy", name], 60_000);
}

/** The datasource file of a guest's disk (EC2 and config drive guests; NoCloud's disk is stock). */
function datasourceConfig(spec: GuestRun): string {
  return spec.kind === "configdrive" ? CONFIGDRIVE_DATASOURCE_CONFIG : EC2_DATASOURCE_CONFIG;
}

/** A throwaway password for the config drive guest: 20 letters and digits. */
function randomPassword(): string {
  const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(20)), (byte) => alphabet[byte % alphabet.length]).join("");
}
