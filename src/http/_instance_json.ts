/**
 * The admin API's JSON shape of an instance: snake_case keys throughout (as
 * the upload answer, md_server's answers and cloud-init's documents), one
 * `boot_state` and the time it was reached (`since`); of the password only
 * whether one is set (`set_at`, `pending`); map keys of
 * `metadata`, `tags` and `host_keys` are the operator's and kept as they are.
 *
 * @module
 */

import { type AccessRecord, bootState, type Instance } from "../store/mod.ts";

/** camelCase → snake_case (`memoryMiB` → `memory_mib`). */
export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z]+)/g, "$1_$2").toLowerCase();
}

/** The record's own keys in snake_case; values (the operator's maps too) as they are. */
function snakeKeys(record: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) out[snakeCase(key)] = value;
  return out;
}

/** An instance with its boot tracking, as every admin answer shows it. */
export function instanceJson(instance: Instance, access: AccessRecord | null): Record<string, unknown> {
  const state = bootState(instance, access);
  const since = state === "stopped"
    ? instance.stoppedAt
    : access?.bootedAt ?? access?.userDataAt ?? access?.firstMetadataAt ?? instance.updatedAt;
  // The password's hash and clear text are never shown: only whether one is set and waits to be delivered.
  const { password, postedPassword, ...record } = instance;
  return {
    ...snakeKeys(record),
    password: password ? { set_at: password.setAt, pending: password.clear !== null } : null,
    // The guest's own, encrypted: `mdserver password NAME --show-encrypted` prints it.
    posted_password: postedPassword ? { posted_at: postedPassword.postedAt } : null,
    boot_state: state.replace(/[\s-]+/g, "_"),
    since,
    access: access === null ? null : snakeKeys(access),
  };
}
