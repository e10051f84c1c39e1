/**
 * The two listeners as plain handlers `(request, info) => Promise<Response>`:
 * metadata (guests: EC2, OpenStack, NoCloud, md_server's upload, cloud-init's
 * boot events) and admin
 * (loopback or a unix socket: uploads, `ctl`, previews, metrics). The only
 * part that knows HTTP statuses: errors.ts turns HttpError and every domain
 * error class into a response, in one table. It may import every lower part
 * (config/, domain/, ipam/, store/, guest_api/, io/, log/, user_data); only
 * service/ imports it.
 *
 * @module
 */

export {
  type AdminDeps,
  type AdminHandler,
  createAdminHandler,
  type DnsmasqState,
  type ReloadOutcome,
} from "./admin.ts";
export { MAX_BODY_BYTES, readBody } from "./body.ts";
export { bootJson } from "./_boots_admin.ts";
export { answerBootEvent, type BootEventDeps, declareBootEventCounters, EventRateLimiter } from "./boot_events.ts";
export { errorToResponse, HttpError, jsonResponse, textResponse } from "./errors.ts";
export { RequestGate } from "./gate.ts";
export { createMetadataHandler, type Handler, type MetadataDeps, type MetadataHandler } from "./metadata.ts";
export { AnswersAhead, type AnswersAheadOptions, type KeptAnswer, type KeptUserData } from "./answer_ahead.ts";
export { type ConfigDriveKeeper, WARNING_HEADER } from "./_upload.ts";
