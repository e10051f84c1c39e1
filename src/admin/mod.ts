/**
 * The admin API as its clients (`ctl`, the libvirt hook) see it: where it
 * listens, read from the configuration file and its includes, and one
 * request to it over the unix socket or TCP — with fetch for `ctl`
 * (adminRequest), with the small HTTP/1.1 client of http1.ts for the hook
 * (adminExchange), whose process would spend a third of its time starting
 * fetch. It imports only config/ini.ts, config/files.ts and io/read_text.ts,
 * so the hook stays small; the server side is http/admin.ts.
 *
 * @module
 */

export {
  adminBaseUrl,
  type AdminEndpoint,
  adminExchange,
  adminLocation,
  adminRequest,
  type AdminRequestInit,
  DEFAULT_ADMIN_ADDRESS,
  DEFAULT_ADMIN_PORT,
  DEFAULT_ADMIN_SOCKET,
  DEFAULT_ADMIN_TOKEN_FILE,
  DEFAULT_CONFIG_FILE,
  type EndpointFileSystem,
  readAdminEndpoint,
  realEndpointFileSystem,
} from "./endpoint.ts";
export {
  type Http1Answer,
  type Http1Request,
  http1Request,
  type Http1Target,
  MAX_ANSWER_BYTES,
  targetName,
} from "./http1.ts";
