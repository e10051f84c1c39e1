/**
 * The guest's side of OpenStack's password route,
 * `/openstack/<version>/password` (cloudbase-init uses `2013-04-04`), as
 * Nova answers it: POST keeps the guest's encrypted password once (409
 * Conflict while one is kept, 413 past Nova's 1020 bytes); GET and HEAD
 * answer what is kept, else the operator's password while it waits to be
 * delivered (GET delivers it), else an empty 200 — cloudbase-init takes a
 * 404 for an error, and an empty answer for "none is set, post yours".
 *
 * @module
 */

import type { Logger } from "../log/log.ts";
import { type Instance, type InstanceStore, MAX_POSTED_PASSWORD_BYTES, postedPasswordProblem } from "../store/mod.ts";
import { readBody } from "./body.ts";
import { HttpError, textResponse } from "./errors.ts";

/** What the route needs. */
export interface PostedPasswordDeps {
  /** The instance store. */
  store: InstanceStore;
  /** Where a kept post is logged (never its text). */
  log: Logger;
}

/** Answers `/openstack/<version>/password` for the guest the request came from. */
export async function answerGuestPassword(
  request: Request,
  instance: Instance,
  deps: PostedPasswordDeps,
): Promise<Response> {
  if (request.method === "POST") return await keepPostedPassword(request, instance, deps);
  if (instance.postedPassword) return textResponse(instance.postedPassword.encrypted);
  // The operator's password, in clear once (then only its hash is kept).
  const clear = request.method === "GET"
    ? await deps.store.takeClearPassword(instance.uuid)
    : instance.password?.clear ?? null;
  if (clear !== null && request.method === "GET") deps.log.info(`password: ${instance.name}: fetched by the guest`);
  return textResponse(clear ?? "");
}

async function keepPostedPassword(request: Request, instance: Instance, deps: PostedPasswordDeps): Promise<Response> {
  // Nova answers the conflict before it looks at the body.
  if (instance.postedPassword) throw new HttpError(409, "a password is already posted for this instance");
  const text = (await readBody(request, MAX_POSTED_PASSWORD_BYTES)).trim();
  const problem = postedPasswordProblem(text);
  if (problem !== null) throw new HttpError(400, problem);
  const outcome = await deps.store.postPassword(instance.uuid, text);
  if (outcome === "unknown") throw new HttpError(404, `no instance "${instance.name}"`);
  if (outcome === "conflict") throw new HttpError(409, "a password is already posted for this instance");
  deps.log.info(`password: ${instance.name}: posted by the guest (${text.length} characters, encrypted)`);
  return textResponse("");
}
