/**
 * What the e2e checks of the guest whose only datasource is its config
 * drive: mdserver served it no metadata or user-data over HTTP, it has no
 * route to 169.254.169.254 (its address is the drive's static one, so no
 * DHCP option gave it one), and over SSH (the key from the drive) its
 * default user's password is the one `mdserver password` set before the
 * first start: /etc/shadow holds its SHA-512 crypt hash (checked with the
 * guest's own crypt(3) through perl, which Debian always has), and the
 * drive's `cloudstack/password/vm_password.txt` has it at the start that
 * delivered it and no more at the next one.
 *
 * @module
 */

import { inGuest, type SshTarget } from "./guest_checks.ts";
import { runCommand } from "./process.ts";
import type { Report } from "./report.ts";
import { escapeRegExp } from "./text.ts";
import { shellQuote } from "../../src/io/shell_quote.ts";

/** mdserver's log lines of GET requests from ip (the metadata listener's request log). */
export function getsFrom(log: string[], ip: string): string[] {
  return log.filter((line) => new RegExp(`\\s${escapeRegExp(ip)}(\\s\\S+)? GET /`).test(line));
}

/** Checks inside the config drive guest; `delivered`: this start's drive holds the password. */
export async function checkConfigDriveGuest(
  report: Report,
  run: string,
  prefix: string,
  target: SshTarget,
  expected: { password: string; delivered: boolean },
): Promise<void> {
  const step = (text: string) => prefix + text;
  const routes = await inGuest(target, "ip -4 route show; echo @@get; ip -4 route get 169.254.169.254");
  const [table = "", get = ""] = routes.stdout.split("@@get\n");
  report.check(
    run,
    step("no route to 169.254.169.254 (static address from the drive, no DHCP option)"),
    routes.code === 0 && !table.includes("169.254.169.254"),
    `ip route: ${table.trim().replace(/\n/g, "; ") || "(empty)"}; route get: ${get.trim() || routes.stderr.trim()}`,
  );

  // The password: its hash in /etc/shadow, checked with the guest's crypt(3).
  const user = target.user;
  const shadow = await inGuest(
    target,
    [
      `hash=$(sudo -n getent shadow ${user} | cut -d: -f2)`,
      'echo "@@hash $hash"',
      // Not "@@…" in perl's double quotes: it would read @match as an array.
      `perl -e 'print crypt($ARGV[0], $ARGV[1]) eq $ARGV[1] ? "crypt-matches\\n" : "crypt-differs\\n"' ${
        shellQuote(expected.password)
      } "$hash"`,
    ].join("; "),
  );
  const hash = /^@@hash (\S*)$/m.exec(shadow.stdout)?.[1] ?? "";
  report.check(
    run,
    step(`${user}'s password is the one mdserver password set (/etc/shadow, crypt(3))`),
    /^\$6\$/.test(hash) && shadow.stdout.includes("crypt-matches"),
    `/etc/shadow: ${hash ? `${hash.slice(0, 20)}…` : "no hash"}; crypt(password, hash) ${
      shadow.stdout.includes("crypt-matches") ? "matches" : "differs"
    }${shadow.stderr.trim() ? `; ${shadow.stderr.trim().slice(0, 200)}` : ""}`,
  );

  // The drive as this start opened it.
  const drive = await inGuest(
    target,
    "sudo -n mkdir -p /run/e2e-drive && sudo -n mount -o ro LABEL=config-2 /run/e2e-drive && " +
      "echo @@files && (cd /run/e2e-drive && sudo -n find . -type f | sort) && echo @@password && " +
      "(sudo -n cat /run/e2e-drive/cloudstack/password/vm_password.txt 2>/dev/null || echo '(none)'); " +
      "sudo -n umount /run/e2e-drive",
  );
  const files = /@@files\n([^]*?)@@password\n/.exec(drive.stdout)?.[1]?.trim().split("\n") ?? [];
  const onDrive = drive.stdout.split("@@password\n")[1]?.trim() ?? "";
  const layouts = ["./openstack/latest/meta_data.json", "./cloudstack/metadata/instance-id.txt"];
  report.check(
    run,
    step(
      expected.delivered
        ? "the drive (label config-2, both layouts) holds the password at the start that delivers it"
        : "the drive no longer holds the password after it was delivered",
    ),
    layouts.every((file) => files.includes(file)) &&
      (expected.delivered ? onDrive === expected.password : onDrive === "(none)"),
    `${files.length} files (${layouts.filter((file) => files.includes(file)).join(", ") || "no known layout"}); ` +
      `vm_password.txt ${onDrive === "(none)" ? "absent" : onDrive === expected.password ? "holds it" : "differs"}` +
      (drive.code === 0 ? "" : `; ${drive.stderr.trim().slice(0, 200)}`),
  );
}

/**
 * The image as the hook left it for QEMU: a regular file of mode 0640
 * owned by `[configdrive] qemu_user` (user and group resolved on the host,
 * whose accounts the namespace shares).
 */
export async function checkDriveOwner(
  report: Report,
  run: string,
  prefix: string,
  image: string,
  owner: { user: string; group: string },
): Promise<void> {
  const ids = await runCommand("sh", ["-c", 'id -u "$0"; getent group "$1" | cut -d: -f3', owner.user, owner.group]);
  const [uid, gid] = ids.stdout.trim().split("\n").map(Number);
  const info = await Deno.stat(image).catch((error) => error as Error);
  const shown = info instanceof Error
    ? info.message
    : `uid ${info.uid}, gid ${info.gid}, mode ${((info.mode ?? 0) & 0o777).toString(8)}`;
  report.check(
    run,
    prefix + `the image is ${owner.user}:${owner.group} 0640 (the hook handed it to QEMU's user)`,
    !(info instanceof Error) && info.isFile && info.uid === uid && info.gid === gid &&
      ((info.mode ?? 0) & 0o777) === 0o640,
    `${image}: ${shown}; ${owner.user}:${owner.group} is ${uid}:${gid}`,
  );
}
