/**
 * The admin API as its clients (`ctl`, the libvirt hook) see it: where it
 * listens, read from the configuration file and its includes, and one
 * request to it over the unix socket or TCP. It imports only config/ini.ts
 * and config/files.ts, so the hook stays small; the server side is
 * http/admin.ts.
 *
 * @module
 */

export {
  adminBaseUrl,
  type AdminEndpoint,
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
