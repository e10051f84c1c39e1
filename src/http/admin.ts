/**
 * The admin listener: loopback or a unix socket, never the metadata
 * address. Uploads from the hook and `curl`, and what `ctl` reads.
 *
 * Routes:
 * - GET  /health
 * - POST /v1/instances            body: domain XML → 201/200 JSON
 * - GET  /v1/instances            → JSON list
 * - GET  /v1/instances/<ref>      → JSON (ref: name, UUID, instance-id, MAC or address)
 * - DELETE /v1/instances/<ref>
 * - POST /v1/instances/<ref>/stopped   the hook's `release end`
 *
 * @module
 */

import type { Config } from "../config.ts";
import { peerIpv4 } from "../identity.ts";
import type { Instance } from "../instance.ts";
import { parseIpv4, poolContains } from "../ipam.ts";
import type { Logger } from "../log.ts";
import { readBody, registerDomainXml, uploadSummary } from "../registration.ts";
import type { InstanceStore } from "../store.ts";
import { errorToResponse, HttpError, jsonResponse } from "./errors.ts";

/** What the admin handler needs. */
export interface AdminDeps {
  config: Config;
  store: InstanceStore;
  log: Logger;
}

/** Builds the admin listener's handler. */
export function createAdminHandler(deps: AdminDeps) {
  return async (request: Request, info: { remoteAddr: Deno.Addr }): Promise<Response> => {
    const url = new URL(request.url);
    const source = info.remoteAddr.transport === "unix" ? "unix" : peerIpv4((info.remoteAddr as Deno.NetAddr).hostname);
    let response: Response;
    try {
      refuseManagedNetwork(source, deps.store);
      response = await route(request, url, deps);
    } catch (error) {
      response = errorToResponse(error, deps.log, `admin ${request.method} ${url.pathname}`);
    }
    deps.log.info(`admin ${source} ${request.method} ${url.pathname} ${response.status}`);
    return response;
  };
}

function refuseManagedNetwork(source: string, store: InstanceStore) {
  const address = parseIpv4(source);
  if (address !== null && poolContains(store.pool, address)) {
    throw new HttpError(403, `the admin API is not served to the managed network (${source})`);
  }
}

async function route(request: Request, url: URL, deps: AdminDeps): Promise<Response> {
  const segments = url.pathname.split("/").filter((segment) => segment !== "").map(decodeURIComponent);
  const method = request.method;
  if (url.pathname === "/health" && method === "GET") {
    return jsonResponse({ status: "ok", instances: await deps.store.allocatedCount() });
  }
  if (segments[0] !== "v1" || segments[1] !== "instances") {
    throw new HttpError(404, `not found: ${url.pathname}`);
  }
  const ref = segments[2];
  if (ref === undefined) {
    if (method === "GET") {
      const instances: Instance[] = [];
      for await (const instance of deps.store.list()) instances.push(instance);
      return jsonResponse(instances);
    }
    if (method === "POST") {
      const result = await registerDomainXml(await readBody(request), deps);
      deps.log.info(
        `upload: ${result.instance.name} ${result.instance.mac} ${result.instance.ipv4} ${
          result.created ? "created" : "updated"
        }`,
      );
      return jsonResponse(uploadSummary(result), result.created ? 201 : 200);
    }
    throw new HttpError(405, `method ${method} not allowed on /v1/instances`);
  }
  const instance = await deps.store.find(ref);
  if (instance === null) throw new HttpError(404, `no instance "${ref}"`);
  const action = segments[3];
  if (action === undefined && method === "GET") return jsonResponse(instance);
  if (action === undefined && method === "DELETE") {
    await deps.store.delete(instance.uuid);
    deps.log.info(`deleted: ${instance.name} ${instance.ipv4}`);
    return jsonResponse({ deleted: instance.name });
  }
  if (action === "stopped" && method === "POST") {
    const updated = await deps.store.setState(instance.uuid, "stopped");
    deps.log.info(`stopped: ${instance.name}`);
    return jsonResponse(updated);
  }
  throw new HttpError(404, `not found: ${method} ${url.pathname}`);
}
