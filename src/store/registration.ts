/**
 * Turning an uploaded libvirt domain XML into a stored instance: the one
 * path shared by md_server's `/instance-upload`, the admin API and the hook.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { findNetworkInterface, parseDomainXml } from "../domain/mod.ts";
import { NoManagedInterfaceError } from "./errors.ts";
import type { Instance } from "./instance.ts";
import type { InstanceStore } from "./store.ts";
import type { UploadKind } from "./store_types.ts";

/** The answer to an upload. */
export interface UploadResult {
  /** The stored instance. */
  instance: Instance;
  /** Whether the domain was new. */
  created: boolean;
}

/**
 * Parses and stores a domain. Bad XML throws the domain reader's errors
 * (InvalidDomainXmlError, InvalidDomainError), a domain with no interface on
 * the managed network NoManagedInterfaceError; either way nothing is changed.
 * Any other error is a bug or the store failing, and is thrown as it is.
 * `upload`: a start (the hook's `prepare begin`), a live migration's
 * destination, or a registration ahead of the start (store.upsert).
 */
export async function registerDomainXml(
  xml: string,
  deps: { store: InstanceStore; config: Config },
  upload: UploadKind = "start",
): Promise<UploadResult> {
  const domain = parseDomainXml(xml);
  const netName = deps.config.dnsmasq.netName;
  const nic = findNetworkInterface(domain, netName);
  if (!nic) {
    throw new NoManagedInterfaceError(
      `domain "${domain.name}" has no interface on network "${netName}" (needs <interface type='network'><source network='${netName}'/>)`,
    );
  }
  const configDrive = domain.cdromFiles.includes(configDrivePath(deps.config, domain.uuid));
  return await deps.store.upsert(
    {
      uuid: domain.uuid,
      name: domain.name,
      mac: nic.mac,
      vcpus: domain.vcpus,
      memoryMiB: domain.memoryMiB,
      metadata: domain.metadata,
      tags: domain.tags,
      ...(configDrive ? { configDrive } : {}),
    },
    {},
    upload,
  );
}

/**
 * Where the config drive of the domain with uuid is: `[configdrive] dir`/<uuid>.iso.
 * A domain asks for its image by naming this file as a CD-ROM's source; a file
 * named for another UUID is never written for it, so no guest reads another's data.
 */
export function configDrivePath(config: Config, uuid: string): string {
  return `${config.configDrive.dir.replace(/\/+$/, "")}/${uuid}.iso`;
}

/** The JSON an upload answers with. */
export function uploadSummary(result: UploadResult): Record<string, unknown> {
  const { instance } = result;
  return {
    name: instance.name,
    uuid: instance.uuid,
    instance_id: instance.instanceId,
    mac: instance.mac,
    ipv4: instance.ipv4,
    created: result.created,
  };
}
