/**
 * The instance record: what mdserver knows of one libvirt domain.
 *
 * @module
 */

import type { InstanceState } from "./boot_state.ts";

/** One domain known to mdserver, as stored in KV. */
export interface Instance {
  /** Domain UUID, lower case; the primary key. */
  uuid: string;
  /** Domain name. */
  name: string;
  /** EC2-style id derived from the UUID; never changes while the domain exists. */
  instanceId: string;
  /** MAC of the interface on the managed network, lower case. */
  mac: string;
  /** Allocated IPv4 address on the managed network. */
  ipv4: string;
  /** vCPUs from the domain XML, or null. */
  vcpus: number | null;
  /** Memory in MiB from the domain XML, or null. */
  memoryMiB: number | null;
  /** `mdserver:` metadata from the domain XML. */
  metadata: Record<string, string>;
  /** Tags from `<mdserver:tags>`. */
  tags: Record<string, string>;
  /** `[service] location` of the mdserver that registered it. */
  location: string;
  /**
   * The host (`[service] hostname`) whose mdserver last uploaded it: where
   * it runs. A migration's upload on the destination moves it; absent in
   * records written before fleets.
   */
  host?: string;
  /** `registered` or `stopped` (see boot_state.ts). */
  state: InstanceState;
  /** ISO timestamps. */
  createdAt: string;
  /** When the record was last written (ISO). */
  updatedAt: string;
  /** When the hook reported the domain stopped, or null. */
  stoppedAt: string | null;
  /** Set when the domain asks for a config drive (a CD-ROM at `[configdrive] dir`/<uuid>.iso). */
  configDrive?: boolean;
  /** The guest's password (`mdserver password`), kept across uploads; absent when none was set. */
  password?: InstancePassword;
  /** The password the guest posted, encrypted with its SSH key (cloudbase-init); absent when none was posted. */
  postedPassword?: PostedPassword;
}

/** A password the guest posted (see posted_password.ts). */
export interface PostedPassword {
  /** Base64 of the password encrypted with the instance's SSH public key, as posted. */
  encrypted: string;
  /** When it was posted (ISO). */
  postedAt: string;
}

/** A guest's password as the record keeps it (see password.ts). */
export interface InstancePassword {
  /** SHA-512 crypt hash, `$6$<salt>$<hash>`: kept for good. */
  hash: string;
  /** The clear text until it has been delivered once; null afterwards. */
  clear: string | null;
  /** When it was set (ISO). */
  setAt: string;
}

/**
 * The instance-id of a new domain: "i-" and all 32 hex digits of its UUID,
 * so distinct domains never share one, and it is stable across uploads,
 * restarts and address changes. Ids stored before (`i-` + 17 digits, or an
 * imported md_server `i-<address>`) are kept as they are.
 */
export function instanceIdFromUuid(uuid: string): string {
  return `i-${uuid.replaceAll("-", "").toLowerCase()}`;
}
