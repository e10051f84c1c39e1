/**
 * What removing instances writes: every key an instance holds (its record,
 * its name, MAC, instance-id and address indexes, its access record, its
 * boots), in the same commit however many instances it removes, and,
 * where the backend keeps the allocation counter, one decrement for the
 * addresses released.
 *
 * @module
 */

import { parseIpv4 } from "../ipam/ipv4.ts";
import type { StoreKey, StoreMutation } from "./backend.ts";
import type { Instance } from "./instance.ts";

/** The keys an instance holds besides its address. */
function instanceKeys(instance: Instance): StoreKey[] {
  return [
    ["instances", instance.uuid],
    ["by_name", instance.name],
    ["by_mac", instance.mac],
    ["by_instance_id", instance.instanceId],
    ["access", instance.uuid],
    // A boot write checks the record first, so none lands after this.
    ["boots", instance.uuid],
  ];
}

/** The writes of one commit removing `instances`; `sums`: the backend keeps the allocation counter. */
export function removalOf(instances: readonly Instance[], sums: boolean): StoreMutation[] {
  const mutations: StoreMutation[] = [];
  let released = 0;
  for (const instance of instances) {
    for (const key of instanceKeys(instance)) mutations.push({ type: "delete", key });
    const address = parseIpv4(instance.ipv4);
    if (address === null) continue;
    mutations.push({ type: "delete", key: ["by_ipv4", address] });
    released++;
  }
  if (released > 0 && sums) mutations.push({ type: "sum", key: ["ipam", "allocated"], delta: -released });
  return mutations;
}
