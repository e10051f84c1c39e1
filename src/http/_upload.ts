/**
 * An upload answered: the body read, the domain registered, one log line,
 * and the JSON summary (201 for a new domain, 200 for a known one). Shared by
 * md_server's `/instance-upload` and the admin API's `POST /v1/instances`.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import type { Logger } from "../log/log.ts";
import { registerDomainXml, uploadSummary } from "../store/registration.ts";
import type { InstanceStore } from "../store/store.ts";
import { readBody } from "./body.ts";
import { jsonResponse } from "./errors.ts";

/** Registers the domain XML of a request body and answers with its summary. */
export async function answerUpload(
  request: Request,
  deps: { store: InstanceStore; config: Config; log: Logger },
): Promise<Response> {
  // The hook's `migrate begin` on the destination of a live migration says so: the guest's boot is not new.
  const migration = new URL(request.url).searchParams.get("migration") === "incoming";
  const result = await registerDomainXml(await readBody(request), deps, migration);
  const { instance } = result;
  const how = migration ? "migrated here" : result.created ? "created" : "updated";
  deps.log.info(`upload: ${instance.name} ${instance.mac} ${instance.ipv4} ${how}`);
  return jsonResponse(uploadSummary(result), result.created ? 201 : 200);
}
