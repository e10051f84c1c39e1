/**
 * The running service: opens KV, builds the store, the renderer and the
 * dnsmasq integration, and serves the metadata and admin listeners until a
 * draining shutdown. The top of the graph below the command line: it may
 * import every part except cli/ and hook/.
 *
 * @module
 */

export {
  type ConfigDriveService,
  createStore,
  openKv,
  type RunningService,
  type StartOptions,
  startService,
} from "./service.ts";
