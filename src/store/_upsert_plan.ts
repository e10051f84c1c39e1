/**
 * Planning one upsert: reading what the registration touches, choosing the
 * address (kept, claimed by an import, or the next free one) and the
 * instance-id, and building the commit that writes the record and its
 * indexes, checked against everything read — so that two uploads in any
 * process or on any host never hold the same name, MAC, address or id.
 *
 * @module
 */

import { serialize } from "node:v8";
import { claimAddress, findFreeAddress } from "./_allocation.ts";
import { getOne, type KeyValueBackend, type StoreEntry } from "./backend.ts";
import { AddressConflictError, InstanceIdConflictError, RecordTooLargeError } from "./errors.ts";
import { type Instance, instanceIdFromUuid } from "./instance.ts";
import type { AdoptOptions, Registration } from "./store_types.ts";
import { UndoableAtomic } from "./_undo.ts";
import { formatIpv4, type Ipv4Pool, parseIpv4, poolContains } from "../ipam/ipv4.ts";

/** Largest value Deno KV stores, in bytes of its serialization (the limit on every backend). */
const MAX_VALUE_BYTES = 65_536;

/** What the record gets from the store that writes it. */
export interface UpsertContext {
  /** `[service] location`. */
  location: string;
  /** This host's name, or null. */
  host: string | null;
  /** The clock. */
  now: () => Date;
}

/** A planned upsert: the record, what it replaces, and the commit to run. */
export interface UpsertPlan {
  instance: Instance;
  existing: Instance | null;
  replaced: Instance | null;
  op: UndoableAtomic;
}

/**
 * Reads and plans an upsert (`from`: where to look for a free address, the
 * cursor when undefined). Throws AddressConflictError, InstanceIdConflictError,
 * PoolFullError, AddressOutsidePoolError or RecordTooLargeError.
 */
export async function planUpsert(
  backend: KeyValueBackend,
  pool: Ipv4Pool,
  registration: Registration,
  adopt: AdoptOptions,
  from: number | undefined,
  context: UpsertContext,
): Promise<UpsertPlan> {
  const { uuid, name, mac } = registration;
  // The id a new domain gets and the cursor are read with the rest: one read for a usual upload.
  const newId = adopt.instanceId ?? instanceIdFromUuid(uuid);
  const [existingEntry, nameEntry, macEntry, newIdEntry, cursorEntry] = await backend.getMany(
    [["instances", uuid], ["by_name", name], ["by_mac", mac], ["by_instance_id", newId], ["ipam", "cursor"]],
  ) as [StoreEntry<Instance>, StoreEntry<string>, StoreEntry<string>, StoreEntry<string>, StoreEntry<number>];
  const existing = existingEntry.value;

  // A different domain with the same name is a redefinition of that host:
  // the new domain replaces the old record and inherits its address.
  let replaced: Instance | null = null;
  let replacedEntry: StoreEntry<Instance> | null = null;
  if (nameEntry.value !== null && nameEntry.value !== uuid) {
    replacedEntry = await getOne<Instance>(backend, ["instances", nameEntry.value]);
    replaced = replacedEntry.value;
  }
  if (macEntry.value !== null && macEntry.value !== uuid && macEntry.value !== replaced?.uuid) {
    const holder = await getOne<Instance>(backend, ["instances", macEntry.value]);
    throw new AddressConflictError(
      `MAC ${mac} already belongs to instance "${holder.value?.name ?? macEntry.value}"`,
    );
  }

  const keep = [existing?.ipv4, replaced?.ipv4].find((address) => {
    const value = address ? parseIpv4(address) : null;
    return value !== null && poolContains(pool, value);
  });
  let address = keep ? parseIpv4(keep)! : null;
  let addressEntry: StoreEntry | null = null;
  const allocating = address === null;
  if (address === null) {
    const found = adopt.ipv4 !== undefined
      ? await claimAddress(backend, pool, adopt.ipv4, uuid)
      : await findFreeAddress(backend, pool, from ?? cursorEntry.value);
    address = found.address;
    addressEntry = found.entry;
  }

  // Kept once set: an imported md_server instance keeps its old id.
  const instanceId = existing?.instanceId ?? newId;
  const idEntry = instanceId === newId ? newIdEntry : await getOne<string>(backend, ["by_instance_id", instanceId]);
  if (idEntry.value !== null && idEntry.value !== uuid && idEntry.value !== replaced?.uuid) {
    // Never take over another domain's id (its index would point here, and
    // DELETE by id would remove the wrong instance).
    const holder = await getOne<Instance>(backend, ["instances", idEntry.value]);
    throw new InstanceIdConflictError(
      `instance-id ${instanceId} of "${name}" already belongs to instance "${holder.value?.name ?? idEntry.value}"`,
    );
  }

  const now = context.now().toISOString();
  const instance: Instance = {
    uuid,
    name,
    instanceId,
    mac,
    ipv4: formatIpv4(address),
    vcpus: registration.vcpus,
    memoryMiB: registration.memoryMiB,
    metadata: registration.metadata,
    tags: registration.tags,
    location: context.location,
    ...(context.host !== null ? { host: context.host } : {}),
    state: "registered",
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
    stoppedAt: null,
    ...(registration.configDrive ? { configDrive: true } : {}),
    // Set by the operator, not by the domain XML: an upload keeps it.
    ...(existing?.password ? { password: existing.password } : {}),
    // Posted by the guest, not in the domain XML: kept too.
    ...(existing?.postedPassword ? { postedPassword: existing.postedPassword } : {}),
  };

  const op = new UndoableAtomic(backend).check(existingEntry, nameEntry, macEntry, idEntry);
  if (addressEntry) op.check(addressEntry);
  if (replacedEntry && replaced) {
    op.check(replacedEntry).delete(["instances", replaced.uuid])
      .delete(["by_instance_id", replaced.instanceId]);
    if (replaced.mac !== mac) op.delete(["by_mac", replaced.mac]);
    const replacedAddress = parseIpv4(replaced.ipv4);
    if (replacedAddress !== null && replacedAddress !== address) {
      op.delete(["by_ipv4", replacedAddress]);
      if (backend.sums) op.sum(["ipam", "allocated"], -1);
    }
  }
  if (existing) {
    if (existing.name !== name) op.delete(["by_name", existing.name]);
    if (existing.mac !== mac) op.delete(["by_mac", existing.mac]);
    const oldAddress = parseIpv4(existing.ipv4);
    if (oldAddress !== null && oldAddress !== address) {
      op.delete(["by_ipv4", oldAddress]);
      if (backend.sums) op.sum(["ipam", "allocated"], -1);
    }
  }
  op.set(["instances", uuid], instance)
    .set(["by_name", name], uuid)
    .set(["by_mac", mac], uuid)
    .set(["by_ipv4", address], uuid)
    .set(["by_instance_id", instance.instanceId], uuid);
  if (allocating) {
    op.set(["ipam", "cursor"], address);
    if (backend.sums) op.sum(["ipam", "allocated"], 1);
  }
  // KV refuses a value over 64 KiB: the domain brought too much metadata.
  if (serialize(instance).byteLength > MAX_VALUE_BYTES) {
    throw new RecordTooLargeError(
      `cannot store "${name}": its record is over the store's 64 KiB limit; keep its mdserver metadata and tags smaller`,
    );
  }
  return { instance, existing, replaced, op };
}
