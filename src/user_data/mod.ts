/**
 * User-data and vendor-data: a guest's template found in `userdata_dir` the
 * way md_server found it, rendered by Eta with md_server's `{{name}}` and
 * Bottle `%` forms, checked as cloud-init will parse it, and a directory of
 * parts joined into MIME multipart.
 *
 * Owns: template lookup, the template dialect, the cloud-config check and
 * multipart assembly. Imports the file system (templates are files), its
 * npm libraries and config/'s public-key lines; it knows nothing of
 * instances, HTTP or the store — callers pass the template data in.
 *
 * @example
 * ```ts
 * import { TemplateRenderer } from "./mod.ts";
 * const renderer = new TemplateRenderer({ userdataDir: "/etc/mdserver/userdata", suffixes: ["", ".yaml"], defaultTemplate: null });
 * const { body } = await renderer.renderUserData({ prefix: null, name: "web01", mac: "52:54:00:00:00:01" }, { hostname: "web01" });
 * ```
 *
 * @module
 */

export {
  bootEventsVendorData,
  REPORTER_NAME,
  reportingYaml,
  RUNTIME_CONFIG,
  RUNTIME_MARKER,
  runtimeConfigCommand,
  withBootEvents,
} from "./boot_events.ts";
export { BUILTIN_USER_DATA } from "./builtin.ts";
export { checkCloudConfig, type CloudConfigKind, cloudConfigKind, type YamlWarning } from "./cloud_config.ts";
export { TemplateError, TemplateNotFoundError } from "./errors.ts";
export type { TemplateSource, UserDataTarget } from "./_lookup.ts";
export {
  type RenderedTemplate,
  TemplateRenderer,
  type TemplateRendererOptions,
  type TemplateWarningListener,
} from "./renderer.ts";
export { typeFromStart } from "./start_type.ts";
