/**
 * What a guest request carries through the metadata handler's routes: its
 * context (the dependencies with the token signer resolved, and the
 * request's notes) and the steps every route shares — finding the guest,
 * noting its fetches for boot tracking, answering a document.
 *
 * @module
 */

import type { Document, TokenSigner, TreeDirectory } from "../guest_api/mod.ts";
import { identifyGuest, UnknownGuestError } from "../guest_api/mod.ts";
import type { Instance } from "../store/mod.ts";
import type { UserDataTarget } from "../user_data/mod.ts";
import type { EventRateLimiter } from "./boot_events.ts";
import { HttpError } from "./errors.ts";
import type { MetadataDeps } from "./metadata.ts";

/** What one request has learnt, for its log line and metrics, and an answer worth keeping. */
export interface RequestNotes {
  instance: Instance | null;
  api: string;
  /** User-data rendered from a template whose signature was taken: worth keeping. */
  keep: { body: string; contentType: string; userData: { target: UserDataTarget; signature: string } } | null;
}

/** The dependencies with the token signer resolved, and this request's notes. */
export interface Context extends MetadataDeps {
  tokens: TokenSigner;
  notes: RequestNotes;
  onTemplateError?: () => void;
  trees: Ec2Trees;
  /** verify_mac = auto found the neighbour table unreadable: requests are served unchecked. */
  neighbourTableUnreadable: boolean;
  onNeighbourTableUnreadable: (error: Error) => void;
  /** Told of each token found valid, so that answers kept ahead may be served to it. */
  onValidToken: (token: string, uuid: string, address: string) => void;
  /** The listener's rate limit for boot events. */
  eventLimiter: EventRateLimiter;
}

/** The EC2 `meta-data/` or `dynamic/` tree of an instance. */
export type Ec2Trees = (section: "meta-data" | "dynamic", instance: Instance) => TreeDirectory;

/** A document as the response that serves it. */
export function documentResponse(document: Document): Response {
  return new Response(document.body, { headers: { "content-type": document.contentType } });
}

/** Refuses a method the route does not take (405 with Allow). */
export function requireMethod(request: Request, allowed: string[]) {
  if (!allowed.includes(request.method)) {
    throw new HttpError(405, `method ${request.method} not allowed here`, { allow: allowed.join(", ") });
  }
}

/** The guest at `source`; `note` false for a request that is no metadata fetch (a boot event). */
export async function requireGuest(source: string, deps: Context, note = true): Promise<Instance> {
  const instance = await identifyGuest(deps.store, source, {
    verifyMac: deps.neighbourTableUnreadable ? false : deps.config.mdserver.verifyMac,
    onUnreadable: deps.onNeighbourTableUnreadable,
    log: deps.log,
    ...(deps.neighbours ? { neighbours: deps.neighbours } : {}),
  });
  if (instance === null) {
    throw new UnknownGuestError(source);
  }
  deps.notes.instance = instance;
  if (note) noteFetch(deps, instance.uuid, "metadata");
  return instance;
}

/** Notes one fetch for boot tracking: in the access record and in the current boot. */
export function noteFetch(
  deps: Pick<MetadataDeps, "access" | "boots">,
  uuid: string,
  kind: "metadata" | "user-data",
): void {
  if (kind === "metadata") deps.access.noteMetadata(uuid);
  else deps.access.noteUserData(uuid);
  deps.boots?.noteFetch(uuid, kind);
}
