/**
 * What a guest is answered: who is asking (identity.ts: the source address,
 * optionally the neighbour table's MAC, neighbours.ts), IMDSv2 session
 * tokens (tokens.ts), the template variables (template_data.ts), and the
 * documents of every API rendered for one instance (metadata/: pure EC2,
 * OpenStack, NoCloud and network-config renderers, and documents.ts which
 * adds the templates). Refusals are classes (errors.ts). It may import
 * config/, ipam/, domain/, store/ (types and lookups), user_data and log/;
 * only http/ turns its answers and errors into responses.
 *
 * @module
 */

export { DocumentTemplateError, InvalidTokenTtlError, MacMismatchError, UnknownGuestError } from "./errors.ts";
export { identifyGuest, type IdentityOptions, isLoopback, macMismatch, peerIpv4 } from "./identity.ts";
export { ipNeighLookup, type Neighbour, type NeighbourLookup, parseIpNeighJson } from "./neighbours.ts";
export { buildTemplateData, type TemplateExtras } from "./template_data.ts";
export { createTemplateRenderer } from "./template_renderer.ts";
export { type GuestUrls, guestUrls, PHONE_HOME_PATH } from "./guest_urls.ts";
export {
  checkToken,
  createTokenSigner,
  issueToken,
  MAX_TOKEN_TTL_SECONDS,
  parseTokenTtl,
  TOKEN_HEADER,
  TOKEN_TTL_HEADER,
  type TokenCheck,
  type TokenSigner,
  type TokenSubject,
} from "./tokens.ts";
export * from "./metadata/mod.ts";
// The renderer's types, which DocumentDeps and the handlers take.
export {
  type RenderedTemplate,
  TemplateError,
  TemplateNotFoundError,
  TemplateRenderer,
  type UserDataTarget,
} from "../user_data/mod.ts";
