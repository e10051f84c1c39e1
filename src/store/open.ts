/**
 * The configured backend: Deno KV in `[mdserver] kv_file` (its folder
 * created), or the etcd cluster of `[store] endpoints`.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Config } from "../config/config.ts";
import type { KeyValueBackend } from "./backend.ts";
import { EtcdBackend } from "./etcd_backend.ts";
import { DenoKvBackend } from "./kv_backend.ts";

/** Opens the backend `[store] backend` names. */
export async function openBackend(config: Config): Promise<KeyValueBackend> {
  if (config.store.backend === "etcd") {
    return new EtcdBackend({
      endpoints: config.store.endpoints,
      prefix: config.store.prefix,
      timeoutMs: config.store.timeoutMs,
    });
  }
  await Deno.mkdir(dirname(config.mdserver.kvFile), { recursive: true });
  return new DenoKvBackend(await Deno.openKv(config.mdserver.kvFile));
}
