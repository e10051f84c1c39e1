/**
 * Moving one host's instances from its Deno KV file into the fleet's store
 * (`mdserver migrate-store`): each instance is registered on the target
 * with its own address and instance-id (as an import pins them), its state
 * and its access record (boot progress, phone-home host keys) copied. An
 * instance the target already holds with the same address and id is kept;
 * one whose address or id another instance holds there fails, changing
 * nothing, and is reported. Running it again is harmless.
 *
 * @module
 */

import type { KeyValueBackend } from "./backend.ts";
import { RegistrationError } from "./errors.ts";
import type { Instance } from "./instance.ts";
import type { InstanceStore } from "./store.ts";

/** What happened to one instance. */
export interface MigrationOutcome {
  /** "moved", "kept" (already there, unchanged) or "failed". */
  result: "moved" | "kept" | "failed";
  /** The instance's name. */
  name: string;
  /** Its address (in the source). */
  ipv4: string;
  /** Its instance-id (in the source). */
  instanceId: string;
  /** Why it failed. */
  reason?: string;
}

/** Copies every instance of `source` into `target`; the outcomes in the source's order. */
export async function migrateStore(
  source: InstanceStore,
  target: InstanceStore,
  progress?: (done: number) => void,
): Promise<MigrationOutcome[]> {
  const outcomes: MigrationOutcome[] = [];
  for await (const instance of source.list()) {
    outcomes.push(await migrateOne(instance, source.backend, target));
    progress?.(outcomes.length);
  }
  return outcomes;
}

async function migrateOne(
  instance: Instance,
  from: KeyValueBackend,
  target: InstanceStore,
): Promise<MigrationOutcome> {
  const summary = { name: instance.name, ipv4: instance.ipv4, instanceId: instance.instanceId };
  const there = await target.getByUuid(instance.uuid);
  if (there !== null && there.ipv4 === instance.ipv4 && there.instanceId === instance.instanceId) {
    return { result: "kept", ...summary };
  }
  try {
    const { instance: stored } = await target.upsert(
      {
        uuid: instance.uuid,
        name: instance.name,
        mac: instance.mac,
        vcpus: instance.vcpus,
        memoryMiB: instance.memoryMiB,
        metadata: instance.metadata,
        tags: instance.tags,
      },
      { ipv4: instance.ipv4, instanceId: instance.instanceId },
      "migration",
    );
    if (stored.ipv4 !== instance.ipv4 || stored.instanceId !== instance.instanceId) {
      // A record of this UUID was there already with other values: it keeps them.
      return {
        result: "failed",
        ...summary,
        reason: `the target already holds it as ${stored.ipv4} ${stored.instanceId}`,
      };
    }
    if (instance.state === "stopped") await target.setState(instance.uuid, "stopped");
    const [access] = await from.getMany([["access", instance.uuid]]);
    if (access!.value !== null) {
      await target.backend.commit([], [{ type: "set", key: ["access", instance.uuid], value: access!.value }]);
    }
    return { result: "moved", ...summary };
  } catch (error) {
    if (error instanceof RegistrationError) return { result: "failed", ...summary, reason: error.message };
    throw error;
  }
}
