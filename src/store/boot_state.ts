/**
 * The one instance state machine, as `ctl list` and the metrics show it:
 *
 * ```
 * upload ──► registered ──► metadata fetched ──► user-data fetched ──► booted
 *    ▲            (guest GETs)        (guest GETs user-data)    (phone_home POST)
 *    │                                                                │
 *    └── a re-upload (the hook's `prepare begin`) starts again ◄──────┤
 *                                      stopped ◄── the hook's `release end`
 * ```
 *
 * The instance record holds only the half the store changes (`registered`
 * or `stopped`, InstanceState); what the guest did is in its access record
 * (AccessRecord, written by AccessRecorder), and bootState() combines the
 * two. An upload sets the record back to `registered` and clears the access
 * record's boot progress.
 *
 * @module
 */

/** The half of the state kept in the instance record: set by uploads and the hook's stop report. */
export type InstanceState = "registered" | "stopped";

/** The state an instance is in, in the order a boot goes through them. */
export type BootState = "registered" | "metadata fetched" | "user-data fetched" | "booted" | "stopped";

/** What mdserver has seen of one instance's boots. */
export interface AccessRecord {
  /** First metadata request since the last (re)start. */
  firstMetadataAt: string | null;
  /** Latest metadata request noted. */
  lastMetadataAt: string | null;
  /** When the guest fetched its user-data. */
  userDataAt: string | null;
  /** When cloud-init's phone_home reported the boot. */
  bootedAt: string | null;
  /** Host name the guest reported in phone_home. */
  bootHostname: string | null;
  /** SSH host keys from phone_home: key type (e.g. "ssh-ed25519") → "type base64". */
  hostKeys: Record<string, string>;
}

/** An empty record. */
export function emptyAccessRecord(): AccessRecord {
  return {
    firstMetadataAt: null,
    lastMetadataAt: null,
    userDataAt: null,
    bootedAt: null,
    bootHostname: null,
    hostKeys: {},
  };
}

/** The state of an instance from its record and its access record. */
export function bootState(instance: { state: InstanceState }, access: AccessRecord | null): BootState {
  if (instance.state === "stopped") return "stopped";
  if (!access) return "registered";
  if (access.bootedAt) return "booted";
  if (access.userDataAt) return "user-data fetched";
  if (access.firstMetadataAt) return "metadata fetched";
  return "registered";
}
