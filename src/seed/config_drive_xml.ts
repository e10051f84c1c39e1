/**
 * The libvirt `<disk>` element that asks mdserver for a config drive: a
 * read-only CD-ROM whose source is `[configdrive] dir`/<the domain's
 * uuid>.iso. The hook's upload at `prepare begin` builds that file before
 * QEMU opens it; `startupPolicy='optional'` lets the domain start without
 * it if the build failed (fail open). Pure text, as smbios.ts.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { configDrivePath } from "../store/mod.ts";

/** Where the drive goes: a SATA `sdb` by default, so a boot ISO can stay on the first CD-ROM. */
export interface DriveTarget {
  /** The target device name, default "sdb". */
  dev?: string;
  /** The bus, default "sata" ("ide" on an i440fx machine without AHCI, "scsi" with a SCSI controller). */
  bus?: string;
}

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", "'": "apos", '"': "quot" }[c]};`,
  );
}

/** The `<disk device='cdrom'>` element for the domain with uuid, to go inside its `<devices>`. */
export function configDriveDiskXml(config: Config, uuid: string, target: DriveTarget = {}): string {
  const path = escapeXml(configDrivePath(config, uuid.toLowerCase()));
  return [
    "<disk type='file' device='cdrom'>",
    "  <driver name='qemu' type='raw'/>",
    `  <source file='${path}' startupPolicy='optional'/>`,
    `  <target dev='${escapeXml(target.dev ?? "sdb")}' bus='${escapeXml(target.bus ?? "sata")}'/>`,
    "  <readonly/>",
    "</disk>",
  ].join("\n");
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The UUID libvirt gives a domain name: `virsh domuuid NAME`. Throws when virsh does not know it. */
export async function virshDomainUuid(domain: string, connect: string | null): Promise<string> {
  const args = [...(connect ? ["--connect", connect] : []), "domuuid", domain];
  const output = await new Deno.Command("virsh", { args, stdout: "piped", stderr: "piped" }).output();
  const uuid = new TextDecoder().decode(output.stdout).trim();
  if (!output.success || !UUID_RE.test(uuid)) {
    const reason = new TextDecoder().decode(output.stderr).trim().split("\n")[0] ?? "";
    throw new Error(`virsh does not know domain "${domain}"${reason ? `: ${reason}` : ""}; give its UUID instead`);
  }
  return uuid.toLowerCase();
}

/**
 * `configdrive DOMAIN|UUID [--dev sdb] [--bus sata] [--connect URI]`: prints
 * the `<disk>` element for the domain (its UUID from virsh when a name is
 * given); returns the exit code.
 */
export async function runConfigDriveXml(
  line: { args: string[]; options: Map<string, string | true> },
  deps: {
    config: Config;
    print(line: string): void;
    domainUuid?: (domain: string, connect: string | null) => Promise<string>;
  },
): Promise<number> {
  const domain = line.args[1];
  if (!domain) throw new TypeError("configdrive needs a domain name or UUID");
  const text = (name: string) => {
    const value = line.options.get(name);
    return typeof value === "string" ? value : undefined;
  };
  const uuid = UUID_RE.test(domain)
    ? domain.toLowerCase()
    : await (deps.domainUuid ?? virshDomainUuid)(domain, text("connect") ?? null);
  const target: DriveTarget = {};
  if (text("dev")) target.dev = text("dev")!;
  if (text("bus")) target.bus = text("bus")!;
  deps.print(`<!-- mdserver: the config drive of ${escapeXml(domain)}; virsh edit: put it inside <devices>. -->`);
  deps.print(configDriveDiskXml(deps.config, uuid, target));
  return 0;
}

/**
 * The QEMU arguments that attach the domain's config drive as a read-only
 * IDE CD-ROM, for a guest started without libvirt (after its upload built
 * the image): `-drive file=…,media=cdrom,readonly=on,if=ide,index=2`.
 */
export function configDriveQemuArgs(config: Config, uuid: string): string[] {
  // QEMU's -drive splits on "," (doubled to escape).
  const file = configDrivePath(config, uuid.toLowerCase()).replaceAll(",", ",,");
  return ["-drive", `file=${file},format=raw,media=cdrom,readonly=on,if=ide,index=2`];
}
