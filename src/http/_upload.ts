/**
 * An upload answered: the body read, the domain registered, its config
 * drive brought up to date when a keeper is given, one log line, and the
 * JSON summary (201 for a new domain, 200 for a known one). Shared by
 * md_server's `/instance-upload` and the admin API's `POST /v1/instances`.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import type { Logger } from "../log/log.ts";
import { registerDomainXml, uploadSummary } from "../store/registration.ts";
import type { Instance } from "../store/instance.ts";
import type { InstanceStore, UploadKind } from "../store/store.ts";
import { readBody } from "./body.ts";
import { HttpError, jsonResponse } from "./errors.ts";

/** What the listeners ask of the config drive keeper (src/seed/config_drive.ts); it never throws. */
export interface ConfigDriveKeeper {
  /**
   * Builds the instance's image when it asks for one, removes it when it no longer does;
   * `deliver`: the build for a start, after which a pending password counts as delivered.
   */
  refresh(
    instance: Pick<Instance, "uuid" | "name">,
    options?: { deliver?: boolean },
  ): Promise<{ state: string; reason?: string }>;
  /** Removes the image of a deleted instance. */
  remove(uuid: string): Promise<boolean>;
}

/** Header of an upload's answer saying why the config drive was not built (the hook prints it). */
export const WARNING_HEADER = "x-mdserver-warning";

/**
 * What the query says the upload is: the hook's `migrate begin` on the
 * destination of a live migration sends `migration=incoming` (the guest's
 * boot is not new); `mdserver register` sends `start=no` (the domain is
 * registered ahead of its start: no boot begins, no password is delivered).
 */
function uploadKind(query: URLSearchParams): UploadKind {
  const migration = query.get("migration");
  const start = query.get("start");
  if (migration !== null && migration !== "incoming") {
    throw new HttpError(400, `migration must be "incoming", not "${migration.slice(0, 40)}"`);
  }
  if (start !== null && start !== "no") throw new HttpError(400, `start must be "no", not "${start.slice(0, 40)}"`);
  if (migration !== null && start !== null) throw new HttpError(400, "migration and start=no do not go together");
  return migration !== null ? "migration" : start !== null ? "ahead" : "start";
}

/** Registers the domain XML of a request body and answers with its summary. */
export async function answerUpload(
  request: Request,
  deps: {
    store: InstanceStore;
    config: Config;
    log: Logger;
    configDrives?: ConfigDriveKeeper | null;
    /** Told of each start's upload once it is stored, not awaited (the guest's answers are prepared: answer_ahead.ts). */
    onStartUploaded?: ((instance: Instance) => void) | null;
  },
): Promise<Response> {
  const upload = uploadKind(new URL(request.url).searchParams);
  const result = await registerDomainXml(await readBody(request), deps, upload);
  const { instance } = result;
  const how = upload === "migration"
    ? "migrated here"
    : `${result.created ? "created" : "updated"}${upload === "ahead" ? " ahead of its start" : ""}`;
  deps.log.info(`upload: ${instance.name} ${instance.mac} ${instance.ipv4} ${how}`);
  // Before answering: the hook returns, and QEMU opens the image, only after
  // this. Only a start's image delivers a pending password.
  const drive = deps.configDrives ? await deps.configDrives.refresh(instance, { deliver: upload === "start" }) : null;
  if (upload === "start") deps.onStartUploaded?.(instance);
  const summary = uploadSummary(result);
  const headers: Record<string, string> = {};
  if (drive !== null) summary.config_drive = drive.state;
  if (drive?.state === "failed") headers[WARNING_HEADER] = `config drive not built: ${drive.reason}`.slice(0, 300);
  const response = jsonResponse(summary, result.created ? 201 : 200);
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value.replace(/[\r\n]+/g, " "));
  return response;
}
