/**
 * What the e2e checks once a guest has booted: from outside (mdserver's
 * log and admin API, the serial console, the neighbour table, the host key
 * the guest offers) and, over SSH with the known_hosts file that `mdserver
 * known-hosts` printed, from inside it (`cloud-init status`,
 * networking.service, the IPv6 address, the instance-id cloud-init keeps).
 *
 * @module
 */

import { judgeCloudInitStatus } from "./cloud_init_status.ts";
import type { InstanceView } from "./instance_view.ts";
import { inNamespace } from "./netns.ts";
import { type CommandResult, runCommand, waitFor } from "./process.ts";
import type { Report } from "./report.ts";
import { NAMESPACE, NET } from "./settings.ts";
import { escapeRegExp } from "./text.ts";

/** How to reach a booted guest over SSH. */
export interface SshTarget {
  ip: string;
  /** Debian's default cloud user. */
  user: string;
  /** The throwaway key in mdserver's [public-keys]. */
  keyFile: string;
  /** A known_hosts file: host keys are checked strictly against it. */
  knownHostsFile: string;
  signal: AbortSignal;
}

/** ssh's options: the key, strict host key checking against the known_hosts file, no prompts. */
function sshOptions(target: SshTarget): string[] {
  return [
    "-i",
    target.keyFile,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${target.knownHostsFile}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "LogLevel=ERROR",
  ];
}

/** Runs one shell command in the guest over SSH. */
export async function inGuest(target: SshTarget, command: string, timeoutMs = 120_000): Promise<CommandResult> {
  return await runCommand(
    ...inNamespace(NAMESPACE, "ssh", [...sshOptions(target), `${target.user}@${target.ip}`, command]),
    { timeoutMs, signal: target.signal },
  );
}

/**
 * `ssh … hostname`, retried until sshd answers (or 90 s): the host name,
 * or null with ssh's last complaint in the report.
 */
export async function sshHostname(report: Report, run: string, step: string, target: SshTarget) {
  let last = "";
  return await report.phase(run, step, async () => {
    const answer = await waitFor(async () => {
      const result = await inGuest(target, "hostname", 20_000);
      last = (result.stderr || result.stdout).trim();
      return result.code === 0 ? result.stdout.trim() : null;
    }, { timeoutMs: 90_000, intervalMs: 2000, signal: target.signal });
    if (answer === null) throw new Error(`ssh ${target.user}@${target.ip} failed for 90 s: ${last}`);
    return answer;
  }, (answer) => `ssh -i <key> -o StrictHostKeyChecking=yes ${target.user}@${target.ip} hostname → ${answer}`)
    .catch((error) => {
      if (target.signal.aborted) throw error;
      return null;
    });
}

/** The ed25519 host key the guest offers (`ssh-keyscan`), "ssh-ed25519 BASE64", or null. */
export async function offeredHostKey(ip: string): Promise<string | null> {
  const scan = await runCommand(...inNamespace(NAMESPACE, "ssh-keyscan", ["-T", "10", "-t", "ed25519", ip]), {
    timeoutMs: 20_000,
  });
  const offered = scan.stdout.split("\n").map((line) => line.trim().split(/\s+/)).find((words) =>
    words[1] === "ssh-ed25519"
  );
  return offered ? `ssh-ed25519 ${offered[2]}` : null;
}

/** Whether the namespace's neighbour table maps the address to the MAC; with what it holds. */
export async function neighbourCheck(ip: string, mac: string): Promise<{ ok: boolean; detail: string }> {
  const neighbour = await runCommand("ip", ["-n", NAMESPACE, "neigh", "show", ip, "dev", NET.bridge]);
  return {
    ok: neighbour.stdout.toLowerCase().includes(mac),
    detail: neighbour.stdout.trim() || `no neighbour entry for ${ip}`,
  };
}

/** mdserver's request log lines for this guest: "<address> [<name>] <METHOD> <path> <status> <ms>". */
export function servedLine(log: string[], ip: string, pattern: string): string | undefined {
  return log.find((line) => new RegExp(`\\s${escapeRegExp(ip)}(\\s\\S+)? ${pattern} 200\\s`).test(line));
}

/** How long reading `cloud-init status` (three runs of it) may take. */
const STATUS_TIMEOUT_MS = 300_000;

/**
 * Checks read from inside the guest: `cloud-init status` (done, no errors,
 * no recoverable errors, `--wait` exits 0), the instance-id cloud-init
 * keeps (/var/lib/cloud/data/instance-id), how long networking.service
 * took to start (a DHCPv6 that nobody answers holds it for minutes), and
 * the IPv6 address the guest got.
 */
export async function checkInsideGuest(
  report: Report,
  run: string,
  prefix: string,
  target: SshTarget,
  guest: {
    instance: InstanceView;
    ipv6: string;
    dhcpv6Answered: boolean;
    dir: string;
    /** The instance-id its datasource gives (the UUID for ConfigDrive). */
    instanceId: string;
  },
): Promise<void> {
  const step = (text: string) => prefix + text;
  // --wait first: it returns when cloud-init has finished, with its exit
  // code. As the default user, without sudo: status needs no root, and sudo
  // would add "unable to resolve host" to the output where the guest's
  // host name is in neither /etc/hosts nor DNS.
  // Three cloud-init runs of a Python program: on a loaded machine under
  // TCG they took more than two minutes together.
  const status = await inGuest(
    target,
    'cloud-init status --wait >/dev/null 2>&1; echo "@@wait $?"; ' +
      "echo @@long; cloud-init status --long 2>&1; echo @@json; cloud-init status --format json 2>/dev/null",
    STATUS_TIMEOUT_MS,
  );
  const file = `${guest.dir}/cloud-init-status${prefix ? "-2" : ""}.txt`;
  await Deno.writeTextFile(file, status.stdout + status.stderr);
  const waitExit = Number(/^@@wait (\d+)$/m.exec(status.stdout)?.[1] ?? "-1");
  const long = /@@long\n([^]*?)@@json\n/.exec(status.stdout)?.[1]?.trim() ?? "";
  const json = status.stdout.split("@@json\n")[1] ?? "";
  const verdict = judgeCloudInitStatus(json, waitExit);
  report.facts[`${run} ${prefix}cloud-init status --long`] = long;
  report.check(
    run,
    step("cloud-init status: done, no recoverable errors"),
    verdict.ok,
    `${status.timedOut ? `ssh killed after ${STATUS_TIMEOUT_MS / 1000} s; ` : ""}--wait exit ${waitExit}; ${
      verdict.ok
        ? long.split("\n").filter((line) => /status|errors/.test(line)).join("; ")
        : verdict.problems.join("; ")
    }`,
  );

  const instanceId = (await inGuest(target, "cat /var/lib/cloud/data/instance-id")).stdout.trim();
  report.check(
    run,
    step("the guest's cloud-init instance-id is mdserver's"),
    instanceId === guest.instanceId,
    `/var/lib/cloud/data/instance-id ${instanceId || "(none)"}; mdserver ${guest.instanceId}`,
  );

  const networking = await inGuest(
    target,
    "systemctl show -P InactiveExitTimestampMonotonic networking.service; " +
      "systemctl show -P ActiveEnterTimestampMonotonic networking.service; " +
      "systemctl show -P ActiveState networking.service",
  );
  const [exitedAt, enteredAt, state] = networking.stdout.trim().split("\n");
  const startSeconds = (Number(enteredAt) - Number(exitedAt)) / 1e6;
  report.timed(
    run,
    step("networking.service start (in the guest)"),
    Number.isFinite(startSeconds) && Number(enteredAt) > 0 ? startSeconds : null,
    state === "active",
    `state ${state ?? "?"}${networking.stderr.trim() ? `; ${networking.stderr.trim()}` : ""}`,
  );

  // Whether the guest asked for DHCPv6 (25.1's fallback configuration does,
  // 22.4's does not; the network stage may have rewritten interfaces.d
  // since, so dnsmasq's reply counts too), and what it got.
  const addresses = await inGuest(
    target,
    "ip -6 -o addr show scope global; echo @@eni; cat /etc/network/interfaces.d/* 2>/dev/null",
  );
  const [ipLines = "", eni = ""] = addresses.stdout.split("@@eni\n");
  const asked = guest.dhcpv6Answered || /^\s*iface\s+\S+\s+inet6\s+dhcp/m.test(eni);
  const has = ipLines.split("\n").some((line) => line.includes(` ${guest.ipv6}/`));
  const found = ipLines.trim().split("\n").map((line) => line.split(/\s+/)[3]).filter(Boolean).join(", ") || "none";
  report.check(
    run,
    step("guest holds its IPv6 address when it asks for DHCPv6"),
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
