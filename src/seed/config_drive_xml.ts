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
