/**
 * One boot of a defined guest, as an operator starts it: `virsh start`
 * (libvirt runs the installed hook, which uploads the domain to mdserver,
 * then creates the tap and runs qemu), then the guest's DHCP exchange with
 * the dnsmasq mdserver runs and cloud-init's "finished" line on the serial
 * console, each timed from the start.
 *
 * @module
 */

import { startWait, type Waited } from "./boot_outcome.ts";
import { type InstanceView, mustGetInstance } from "./instance_view.ts";
import { domainTap, mustVirsh, virsh } from "./libvirt.ts";
import { type Background, waitFor } from "./process.ts";
import { message, type Report, ReportedError } from "./report.ts";
import { type GuestKind, NAMESPACE, NET } from "./settings.ts";
import { consoleLines, lastLines } from "./text.ts";

/** The datasource cloud-init names in its "finished" line, by guest kind. */
const DATASOURCES: Record<GuestKind, string> = {
  nocloud: "DataSourceNoCloudNet",
  ec2: "DataSourceEc2",
  configdrive: "DataSourceConfigDrive",
};

/** What a boot needs to know of the run. */
export interface BootContext {
  report: Report;
  signal: AbortSignal;
  /** mdserver's output (dnsmasq's log lines are in it). */
  mdserver: Background;
  bootTimeoutMs: number;
}

/** The guest being booted. */
export interface BootGuest {
  /** The report's run column. */
  run: string;
  /** The domain's name. */
  name: string;
  mac: string;
  kind: GuestKind;
  consoleLog: string;
  /** The IPv6 address mdserver derives from the IPv4 one, once known. */
  ipv6For: (ipv4: string) => string;
}

/** A guest that has booted to cloud-init done. */
export interface Booted {
  instance: InstanceView;
  /** qemu start → cloud-init final, seconds. */
  bootToDone: number;
  consoleText: string;
  /** Whether dnsmasq answered the guest's DHCPv6. */
  dhcpv6Answered: boolean;
  /** performance.now() at `virsh start`. */
  started: number;
  /** `mdserver wait NAME`, started once `virsh start` returned. */
  waiting: Promise<Waited>;
}

/**
 * `virsh start`, then waits for DHCP and cloud-init final; every step is in
 * the report under `prefix`. Resolves with the booted guest, or throws a
 * ReportedError; either way `stop` (virsh destroy) is left to the caller.
 */
export async function bootGuest(ctx: BootContext, guest: BootGuest, prefix: string): Promise<Booted> {
  const { report, signal } = ctx;
  const { run, name, mac } = guest;
  const step = (text: string) => prefix + text;

  // DHCP as dnsmasq saw it: its log is mdserver's log. Both lines name the
  // MAC (a DHCPv6 client's DUID holds it); the addresses are checked after.
  let dhcp: { at: number; line: string } | null = null;
  let dhcp6: { at: number; line: string } | null = null;
  const dhcpPattern = new RegExp(`DHCPACK\\(${NET.bridge}\\) (\\S+) ${mac}`, "i");
  const dhcp6Pattern = new RegExp(`DHCPREPLY\\(${NET.bridge}\\) (\\S+) \\S*${mac}`, "i");
  const stopWatching = ctx.mdserver.onLine((line) => {
    if (dhcp === null && dhcpPattern.test(line)) dhcp = { at: performance.now(), line };
    if (dhcp6 === null && dhcp6Pattern.test(line)) dhcp6 = { at: performance.now(), line };
  });
  let state = "running";
  let watcher: ReturnType<typeof setInterval> | undefined;
  try {
    console.error(`e2e: ${run}: ${prefix}virsh start ${name}`);
    const started = performance.now();
    const instance = await report.phase(
      run,
      step("virsh start, hook upload"),
      async () => {
        await mustVirsh(NAMESPACE, ["start", name], 120_000);
        const instance = await mustGetInstance(name);
        if (instance.mac !== mac) throw new Error(`registered MAC ${instance.mac}, not ${mac}`);
        return instance;
      },
      (instance) => `${instance.name} → ${instance.ipv4}, ${instance.instanceId} (the hook, run by libvirt)`,
    );
    // As the README's recipe: `virsh start NAME && mdserver wait NAME`.
    const waiting = startWait(name, ctx.bootTimeoutMs);
    watcher = setInterval(async () => {
      state = (await virsh(NAMESPACE, ["domstate", name], 10_000)).stdout.trim() || "gone";
    }, 3000);
    const stopIf = () => state === "running" ? null : `the domain is ${state}`;
    report.facts[`${run} ${prefix}tap`] = await domainTap(NAMESPACE, name);

    const deadline = started + ctx.bootTimeoutMs;
    const seconds = (at: number) => (at - started) / 1000;
    const consoleText = () => Deno.readTextFile(guest.consoleLog).catch(() => "");
    const consoleTail = async () => lastLines(consoleLines(await consoleText()), 3);

    // A config drive guest takes its static address from the drive (network_data.json): no DHCP to wait for.
    if (guest.kind !== "configdrive") {
      const gotDhcp = await waitFor(() => dhcp, { timeoutMs: deadline - performance.now(), signal, stopIf })
        .catch((error) => {
          if (signal.aborted) throw error;
          report.timed(run, step("boot to DHCP"), null, false, message(error));
          throw new ReportedError(error);
        });
      if (gotDhcp === null) {
        report.timed(
          run,
          step("boot to DHCP"),
          null,
          false,
          `no DHCPACK for ${mac} from dnsmasq in ${ctx.bootTimeoutMs / 1000} s; console: ${await consoleTail()}`,
        );
        throw new ReportedError("no DHCP");
      }
      const offered = dhcpPattern.exec(gotDhcp.line)![1]!;
      report.timed(
        run,
        step("boot to DHCP (the reserved address)"),
        seconds(gotDhcp.at),
        offered === instance.ipv4,
        gotDhcp.line.replace(/^.*?dnsmasq/i, "dnsmasq") +
          (offered === instance.ipv4 ? "" : `; reserved ${instance.ipv4}`),
      );
    }

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
        step("boot to cloud-init final"),
        null,
        false,
        `"Cloud-init v. … finished" ${why}; console: ${await consoleTail()}`,
      );
      throw new ReportedError("no final");
    }
    const text = await consoleText();
    const panicked = text.includes("Kernel panic");
    report.timed(
      run,
      step("boot to cloud-init final"),
      seconds(final.at),
      true,
      final.line + (panicked ? " (after a guest kernel panic and a reboot: panic=5)" : ""),
    );
    const expectedDatasource = DATASOURCES[guest.kind];
    report.check(
      run,
      step(`cloud-init used ${expectedDatasource}`),
      final.line.includes(expectedDatasource),
      final.line,
    );
    const gotDhcp6 = dhcp6 as { at: number; line: string } | null;
    const ipv6 = guest.ipv6For(instance.ipv4);
    report.timed(
      run,
      step("boot to DHCPv6 reply"),
      gotDhcp6 === null ? null : seconds(gotDhcp6.at),
      gotDhcp6 === null || dhcp6Pattern.exec(gotDhcp6.line)?.[1] === ipv6,
      gotDhcp6 === null
        ? "no DHCPv6 reply: the guest asked for none (22.4's fallback asks for none; --no-ipv6 answers none)"
        : gotDhcp6.line.replace(/^.*?dnsmasq/i, "dnsmasq"),
    );
    return {
      instance,
      bootToDone: seconds(final.at),
      consoleText: text,
      dhcpv6Answered: gotDhcp6 !== null,
      started,
      waiting,
    };
  } finally {
    stopWatching();
    clearInterval(watcher);
  }
}
