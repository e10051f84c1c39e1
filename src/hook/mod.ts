/**
 * The libvirt qemu hook: what it does per operation and how it reaches the
 * admin API (run.ts, run by the top-level hook.ts), and installing it into
 * libvirt's hooks folder (install.ts). run.ts imports only the admin
 * endpoint reader and io/read_text.ts, so the hook's process starts small;
 * nothing here imports the service.
 *
 * @module
 */

export {
  DEFAULT_HOOK_BINARY,
  DEFAULT_HOOK_PATH,
  HookExistsError,
  hookPermissionFlags,
  hookWrapper,
  installHook,
  type InstallHookLine,
  type InstallHookOptions,
  type InstallHookResult,
  runInstallHook,
  WRAPPER_MARKER,
} from "./install.ts";
export { HOOK_BUDGET_MS, type HookAction, hookAction, type HookDeps, main, MAX_XML_BYTES, runHook } from "./run.ts";
