/**
 * The admin API's password routes: `POST /v1/instances/<ref>/password` sets
 * the JSON body's `"password"`, or generates one when the body is empty, and
 * answers with it (the one time the operator sees a generated password);
 * `DELETE` removes it, and the one the guest posted; `GET` answers the one
 * the guest posted (encrypted with its SSH key, base64; _posted_password.ts). The record keeps the SHA-512 crypt hash for good and
 * the clear text until it is delivered; the instance's config drive is
 * rebuilt at once with it, and the domain's next start delivers it (see
 * docs/configdrive.md).
 *
 * @module
 */

import type { Logger } from "../log/log.ts";
import {
  generatePassword,
  type Instance,
  type InstanceStore,
  newInstancePassword,
  passwordProblem,
} from "../store/mod.ts";
import { readBody } from "./body.ts";
import { HttpError, jsonResponse } from "./errors.ts";
import type { ConfigDriveKeeper } from "./_upload.ts";

/** What the password routes need. */
export interface PasswordDeps {
  /** The instance store. */
  store: InstanceStore;
  /** Where the change is logged (never the password). */
  log: Logger;
  /** Rebuilds the config drive; absent when the service keeps none. */
  configDrives?: ConfigDriveKeeper | null;
}

/** Longest body the route reads: a JSON object with one password. */
const MAX_PASSWORD_BODY_BYTES = 4096;

/** The password given in a request body (`{"password": "…"}`), or null when the body is empty. */
function requestedPassword(body: string): string | null {
  if (body.trim() === "") return null;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'the body must be empty (generate a password) or JSON {"password": "..."}');
  }
  const password = (value as { password?: unknown } | null)?.password;
  if (typeof password !== "string") throw new HttpError(400, 'the JSON body needs "password" as a string');
  const problem = passwordProblem(password);
  if (problem !== null) throw new HttpError(400, problem);
  return password;
}

/** Answers GET, POST or DELETE on `/v1/instances/<ref>/password`. */
export async function answerPassword(
  request: Request,
  instance: Instance,
  deps: PasswordDeps,
): Promise<Response> {
  if (request.method === "GET") {
    // The guest's own password as it posted it, encrypted with its SSH key: the operator decrypts it.
    const posted = instance.postedPassword ?? null;
    return jsonResponse({
      name: instance.name,
      posted_password: posted && { encrypted: posted.encrypted, posted_at: posted.postedAt },
    });
  }
  if (request.method === "DELETE") {
    await deps.store.setPassword(instance.uuid, null);
    const drive = deps.configDrives ? await deps.configDrives.refresh(instance) : null;
    deps.log.info(`password: ${instance.name}: removed`);
    return jsonResponse({ name: instance.name, password: null, ...(drive ? { config_drive: drive.state } : {}) });
  }
  if (request.method !== "POST") {
    throw new HttpError(405, `method ${request.method} not allowed on the password`, { allow: "GET, POST, DELETE" });
  }
  const given = requestedPassword(await readBody(request, MAX_PASSWORD_BODY_BYTES));
  const clear = given ?? generatePassword();
  const record = newInstancePassword(clear, new Date());
  if (await deps.store.setPassword(instance.uuid, record) === null) {
    throw new HttpError(404, `no instance "${instance.name}"`);
  }
  const drive = deps.configDrives ? await deps.configDrives.refresh(instance) : null;
  deps.log.info(`password: ${instance.name}: ${given === null ? "generated" : "set"}`);
  return jsonResponse({
    name: instance.name,
    password: clear,
    generated: given === null,
    hash: record.hash,
    ...(drive ? { config_drive: drive.state } : {}),
  });
}
