/**
 * Configuration: md_server's INI files read unchanged (`[_include_]`
 * included), mdserver's new keys, defaults, and validation that names file,
 * section and key in every error; `check-config`'s formatting. It owns the
 * typed `Config` every other part reads. It may import only `ipam/` (address
 * checks) and `node:path`; it reads files only through `ConfigEnvironment`.
 *
 * @module
 */

export {
  type Config,
  DEFAULT_IPV6_PREFIX,
  type DnsmasqManage,
  type ImdsTokens,
  RELEASE_DATE,
  VERSION,
} from "./config.ts";
export { DEFAULT_CONFIG_FILE, includedFiles, type IncludeDirectives, type IncludeLister } from "./files.ts";
export { formatConfig } from "./format.ts";
export { metadataUrl } from "./metadata_url.ts";
export { type IniDocument, type IniEntry, parseIni } from "./ini.ts";
export { type ConfigEnvironment, loadConfig, realConfigEnvironment } from "./load.ts";
export { ConfigError, type ConfigProblem, formatProblem } from "./problems.ts";
export { keyLines, publicKeyLines } from "./public_keys.ts";
export { editDistance, nearestWord } from "./nearest.ts";
export { parseBool } from "./schema.ts";
