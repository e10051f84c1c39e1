/**
 * What a guest can boot from besides the network: ConfigDrive (`config-2`)
 * and NoCloud (`cidata`) seed images holding exactly what the APIs serve
 * (seed_iso.ts), the config drives the service keeps current for every
 * domain that asks for one (config_drive.ts) and the `<disk>` that asks
 * (config_drive_xml.ts), and the libvirt `<sysinfo>` SMBIOS snippet that
 * points cloud-init at this service (smbios.ts). It may import config/, guest_api/,
 * store/, service/ (to open the store) and log/.
 *
 * @module
 */

export {
  buildSeedIso,
  findIsoTool,
  findStoredInstance,
  ISO_TOOLS,
  isoCommand,
  type IsoTool,
  isSeedFormat,
  parseSeedIsoArgs,
  SEED_LABELS,
  seedFiles,
  type SeedFormat,
  type SeedIsoRequest,
  writeIsoImage,
} from "./seed_iso.ts";
export {
  metadataBaseUrl,
  nocloudSerial,
  runSmbios,
  SMBIOS_USAGE,
  type SmbiosDatasource,
  smbiosSnippet,
} from "./smbios.ts";
export { type ConfigDriveDeps, ConfigDriveImages, type ConfigDriveOutcome, SERVICE_ISO_TOOLS } from "./config_drive.ts";
export {
  configDriveDiskXml,
  configDriveQemuArgs,
  type DriveTarget,
  runConfigDriveXml,
  virshDomainUuid,
} from "./config_drive_xml.ts";
