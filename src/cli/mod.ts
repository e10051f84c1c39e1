/**
 * The operator's commands: parsing the command line and running each
 * command (main.ts), `ctl` over the admin API (ctl.ts) with its garbage
 * collection (gc.ts), installing on a host (install.ts) and importing
 * md_server's database (md_server_import.ts). The top of the import graph:
 * it may import every part; no part imports it.
 *
 * @module
 */

export { adminStore, CTL_USAGE, type CtlDeps, type CtlLine, DEFAULT_GC_AGE, formatTable, runCtl } from "./ctl.ts";
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
export { type CliDeps, type CommandLine, configPath, parseCommandLine, runMain, USAGE } from "./main.ts";
export {
  importMdServerEntries,
  type ImportOutcome,
  type MdServerEntry,
  parseMdServerDatabase,
} from "./md_server_import.ts";
