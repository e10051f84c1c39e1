/**
 * What mdserver's admin API says about an instance, read the same way
 * whether its JSON keys are camelCase or snake_case.
 *
 * @module
 */

import { adminCall } from "./admin_client.ts";
import { ADMIN_SOCKET } from "./settings.ts";

/** One instance as the e2e reads it. */
export interface InstanceView {
  uuid: string;
  name: string;
  instanceId: string;
  mac: string;
  ipv4: string;
  /** The record's state (registered, stopped). */
  state: string;
  /** The boot state (registered … booted, stopped), when the API reports it. */
  bootState: string | null;
  firstMetadataAt: string | null;
  userDataAt: string | null;
  bootedAt: string | null;
  /** Key type → "type base64", from phone-home. */
  hostKeys: Record<string, string>;
}

/** GET /v1/instances/NAME: the instance, or null when mdserver has none (404). */
export async function getInstance(name: string): Promise<InstanceView | null> {
  const answer = await adminCall(ADMIN_SOCKET, "GET", `/v1/instances/${encodeURIComponent(name)}`);
  if (answer.status === 404) return null;
  if (answer.status !== 200) throw new Error(`admin GET /v1/instances/${name}: ${answer.status} ${answer.body.trim()}`);
  return readInstance(JSON.parse(answer.body) as Record<string, unknown>);
}

/** GET /v1/instances/NAME; throws when there is none. */
export async function mustGetInstance(name: string): Promise<InstanceView> {
  const instance = await getInstance(name);
  if (instance === null) throw new Error(`mdserver has no instance ${name}`);
  return instance;
}

/** Normalises one answer of the admin API. */
export function readInstance(view: Record<string, unknown>): InstanceView {
  // Boot tracking is either at the top or in an `access` object.
  const access = typeof view.access === "object" && view.access !== null ? view.access as Record<string, unknown> : {};
  const pick = (camel: string, snake: string): unknown =>
    view[camel] ?? view[snake] ?? access[camel] ?? access[snake] ?? null;
  const text = (camel: string, snake: string) => {
    const value = pick(camel, snake);
    return typeof value === "string" ? value : null;
  };
  const keys = pick("hostKeys", "host_keys");
  return {
    uuid: text("uuid", "uuid") ?? "",
    name: text("name", "name") ?? "",
    instanceId: text("instanceId", "instance_id") ?? "",
    mac: text("mac", "mac") ?? "",
    ipv4: text("ipv4", "ipv4") ?? "",
    state: text("state", "state") ?? "",
    bootState: text("bootState", "boot_state"),
    firstMetadataAt: text("firstMetadataAt", "first_metadata_at"),
    userDataAt: text("userDataAt", "user_data_at"),
    bootedAt: text("bootedAt", "booted_at"),
    hostKeys: typeof keys === "object" && keys !== null ? keys as Record<string, string> : {},
  };
}
