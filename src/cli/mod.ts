/**
 * The operator's commands: the command table (commands.ts), parsing and
 * help (args.ts), error lines (messages.ts), running each command
 * (main.ts), the admin commands over callAdmin() (ctl.ts, admin_client.ts) with its garbage
 * collection (gc.ts), installing on a host (install.ts) and importing
 * md_server's database (md_server_import.ts). The top of the import graph:
 * it may import every part; no part imports it.
 *
 * @module
 */

export { adminStore, type CtlDeps, type CtlLine, DEFAULT_GC_AGE, formatTable, runCtl } from "./ctl.ts";
export {
  collectGarbage,
  type CommandRunner,
  formatDuration,
  type GcCandidate,
  type GcCriteria,
  type GcOptions,
  type GcResult,
  type GcStore,
  parseDuration,
  runCommand,
  selectGarbage,
  virshDomainNames,
} from "./gc.ts";
export { install, type InstallOptions, runProgram } from "./install.ts";
export { type CliDeps, configPath, runMain, USAGE } from "./main.ts";
export {
  commandHelp,
  type CommandLine,
  mainHelp,
  parseCommandLine,
  type Parsed,
  synopsis,
  UsageError,
} from "./args.ts";
export { type AdminCall, AdminError, callAdmin } from "./admin_client.ts";
export { COMMANDS, type CommandSpec, findCommand, type OptionSpec } from "./commands.ts";
export { errorLines, permissionRefusal } from "./messages.ts";
export { rfc3339 } from "./time.ts";
export { progressPrinter } from "./progress.ts";
export { installedWrapper, WRAPPER_PATH, type WrapperPaths, wrapperScript } from "./wrapper.ts";
export {
  importMdServerEntries,
  type ImportOutcome,
  type MdServerEntry,
  parseMdServerDatabase,
} from "./md_server_import.ts";
