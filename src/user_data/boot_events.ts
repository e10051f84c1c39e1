/**
 * The built-in vendor-data that asks cloud-init to report its boot to the
 * host through its webhook reporter, which POSTs a JSON event at the start
 * and finish of every stage and module.
 *
 * The reporter is not configured in the instance's cloud-config: cloud-init
 * caches that, and on every later boot init-local would set the reporter up
 * from it before the network exists, its posts would fail, and current
 * cloud-init would count the warnings and call the boot degraded. Instead a
 * `#cloud-boothook` part appends the `reporting:` entry to cloud-init's
 * runtime configuration, /run/cloud-init/cloud.cfg (a tmpfs, empty again at
 * every boot). A boothook runs on every boot while init-network consumes the
 * user-data and vendor-data, after the network is up and before that stage
 * sets reporting up from its merged configuration, whose base includes the
 * runtime file (22.4 and 25.x; 25.x's single process never sets reporting up
 * again in the later stages, so a `bootcmd`, which runs after that point,
 * would be too late). The instance's own `reporting:` (from user-data or the
 * operator's vendor-data) is merged over it and wins.
 *
 * Joined with the operator's own vendor-data (`vendordata_template`): the
 * hook becomes one more part of it (a MIME multipart).
 *
 * @module
 */

import { assembleMultipart } from "./multipart.ts";
import { typeFromStart } from "./start_type.ts";
import { shellQuote } from "../io/mod.ts";

/** The name of mdserver's handler under `reporting:`. */
export const REPORTER_NAME = "mdserver";

/** cloud-init's runtime configuration file (read as base configuration by every stage after ds-identify). */
export const RUNTIME_CONFIG = "/run/cloud-init/cloud.cfg";

/** The line that marks mdserver's entry in the runtime configuration (so the hook adds it once per boot). */
export const RUNTIME_MARKER = "# mdserver boot events";

/** The name of the hook's part in a multipart document. */
const PART_NAME = "mdserver-boot-events.sh";

/**
 * The `reporting:` entry, as YAML lines. A short timeout and no retries:
 * each retry of a failed post waits a second; a host that is down is bounded
 * by the reporter's own rule (three failures in a row at the end of a stage
 * drop the rest).
 */
export function reportingYaml(endpoint: string): string {
  return [
    "reporting:",
    `  ${REPORTER_NAME}:`,
    "    type: webhook",
    `    endpoint: ${JSON.stringify(endpoint)}`,
    "    timeout: 2",
    "    retries: 0",
    "",
  ].join("\n");
}

/**
 * The POSIX sh command that appends the entry to the runtime configuration
 * once: it starts with an empty line (the file may not end in one), never
 * overwrites (ds-identify writes `datasource_list` there), and does nothing
 * when the marker is already there (a second run in the same boot).
 */
export function runtimeConfigCommand(endpoint: string): string {
  const lines = ["", RUNTIME_MARKER, ...reportingYaml(endpoint).trimEnd().split("\n")];
  return [
    `f=${RUNTIME_CONFIG}`,
    `grep -qsxF ${shellQuote(RUNTIME_MARKER)} "$f" ||`,
    `  printf '%s\\n' ${lines.map(shellQuote).join(" ")} >>"$f"`,
  ].join("\n");
}

/** The built-in vendor-data alone: a boothook that adds the reporter to the runtime configuration. */
export function bootEventsVendorData(endpoint: string): string {
  return [
    "#cloud-boothook",
    "#!/bin/sh",
    `# Reports every stage and module of the boot to the host (mdserver [events]): adds cloud-init's webhook`,
    `# reporter to ${RUNTIME_CONFIG}, which is gone at the next boot, so init-local never reports.`,
    runtimeConfigCommand(endpoint),
    "",
  ].join("\n");
}

/** The operator's vendor-data (or user-data, or none) with the built-in reporting hook joined in. */
export function withBootEvents(vendorData: string | null, endpoint: string): string {
  if (vendorData === null || vendorData.trim() === "") return bootEventsVendorData(endpoint);
  const boundary = /^content-type:\s*multipart\/mixed;.*boundary="?([^";\r\n]+)"?/im.exec(vendorData.slice(0, 4096))
    ?.[1];
  const end = boundary === undefined ? -1 : vendorData.lastIndexOf(`--${boundary}--`);
  if (end >= 0) {
    // A multipart document already (a directory of parts): the hook becomes its last part.
    const part = [
      'Content-Type: text/cloud-boothook; charset="utf-8"',
      "MIME-Version: 1.0",
      "Content-Transfer-Encoding: 7bit",
      `Content-Disposition: attachment; filename="${PART_NAME}"`,
      "",
      bootEventsVendorData(endpoint),
    ].join("\n");
    return `${vendorData.slice(0, end)}--${boundary}\n${part}${vendorData.slice(end)}`;
  }
  return assembleMultipart([
    { name: "vendor-data", type: typeFromStart(vendorData) ?? "text/cloud-config", body: vendorData },
    { name: PART_NAME, type: "text/cloud-boothook", body: bootEventsVendorData(endpoint) },
  ]).body;
}
