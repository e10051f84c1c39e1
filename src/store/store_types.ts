/**
 * The store's types: what an upload registers, how an import pins it, the
 * events listeners get, and the store's options.
 *
 * @module
 */

import type { EventCounter } from "../log/burst_log.ts";
import type { Instance } from "./instance.ts";
import type { Ipv4Pool } from "../ipam/ipv4.ts";

/** What an upload registers: the domain's identity on the managed network, as the record keeps it. */
export type Registration = Pick<
  Instance,
  "uuid" | "name" | "mac" | "vcpus" | "memoryMiB" | "metadata" | "tags" | "configDrive"
>;

/** How an import pins what an upload would choose (md_server migration). */
export interface AdoptOptions {
  /** The address the instance already has; must be free or its own. */
  ipv4?: string;
  /** The instance-id the guest already knows. */
  instanceId?: string;
}

/** A change to the set of instances, for whoever mirrors it (dnsmasq). */
export type StoreEvent =
  | {
    type: "upsert";
    instance: Instance;
    previous: Instance | null;
    replaced: Instance | null;
    /** Set when this puts back what a refused upsert had changed (listeners undo their part, nothing more). */
    takenBack?: boolean;
    /** Set when another host made the change (seen by the watch); that host did the rest. */
    remote?: boolean;
    /**
     * Set when the upload is not a start: `migration`, a live migration
     * arriving here (the guest keeps running, its boot is not new);
     * `ahead`, a domain registered before it starts (`mdserver register`:
     * no boot begins).
     */
    upload?: Exclude<UploadKind, "start">;
  }
  | { type: "delete"; instance: Instance; remote?: boolean };

/**
 * What an upload is: the hook's `prepare begin` (a start), the destination
 * of a live migration, or a registration ahead of the first start.
 */
export type UploadKind = "start" | "migration" | "ahead";

/** What the store needs besides its backend. */
export interface StoreOptions {
  /** The pool addresses are allocated from. */
  pool: Ipv4Pool;
  /** `[service] location`, kept in each record. */
  location: string;
  /** This host's name (`[service] hostname`), kept in each record it uploads; default none. */
  host?: string;
  /** The clock; default the wall clock. */
  now?: () => Date;
  /** A listener called after every committed change. */
  onChange?: (event: StoreEvent) => void | Promise<void>;
  /** How long `getByIpv4` trusts what it read, in ms; 0 reads the store every time. Default ADDRESS_CACHE_TTL_MS. */
  addressCacheTtlMs?: number;
  /** Where commit conflicts and failures are counted (one log line per burst). */
  contention?: EventCounter;
  /** The folder of the KV file: a failed commit probes it for space (StoreFullError). Default: no probe. */
  spaceProbeDir?: string;
}
