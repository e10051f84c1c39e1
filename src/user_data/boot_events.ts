/**
 * The built-in vendor-data that asks cloud-init to report its boot to the
 * host: a `reporting:` entry for cloud-init's webhook reporter, which POSTs
 * a JSON event at the start and finish of every stage and module. Vendor
 * data, so it works with whatever user-data a guest gets (user-data wins
 * where both set the same key). Joined with the operator's own vendor-data
 * (`vendordata_template`): a `#cloud-config` one without `reporting:` gets
 * the entry appended (still one YAML mapping, so `cloud-init schema` checks
 * it), any other kind becomes the first part of a MIME multipart whose
 * second part is the entry. Schema-clean for cloud-init 22.4 and 25.x.
 *
 * @module
 */

import { parse } from "yaml";
import { assembleMultipart } from "./multipart.ts";
import { typeFromStart } from "./start_type.ts";

/** The name of mdserver's handler under `reporting:`. */
export const REPORTER_NAME = "mdserver";

/**
 * The `reporting:` entry, as YAML lines. A short timeout and no retries:
 * each retry of a failed post waits a second, and on every boot after the
 * first, init-local's posts fail (no network yet), which with one retry
 * made that stage 3 s longer (docs/boot-events.md); a host that is down is
 * bounded by the reporter's own rule (three failures in a row at the end of
 * a stage drop the rest).
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

/** The built-in vendor-data alone. */
export function bootEventsVendorData(endpoint: string): string {
  return `#cloud-config\n# Reports every stage and module of the boot to the host (mdserver [events]).\n${
    reportingYaml(endpoint)
  }`;
}

/** The operator's vendor-data (or none) with the built-in reporting entry joined in. */
export function withBootEvents(vendorData: string | null, endpoint: string): string {
  if (vendorData === null || vendorData.trim() === "") return bootEventsVendorData(endpoint);
  if (/^#cloud-config[ \t]*\r?\n/.test(vendorData)) {
    const mapping = yamlMapping(vendorData);
    if (mapping !== null && "reporting" in mapping) return vendorData;
    if (mapping !== null) {
      const joined = `${vendorData.endsWith("\n") ? vendorData : `${vendorData}\n`}${reportingYaml(endpoint)}`;
      const after = yamlMapping(joined);
      if (after !== null && typeof after.reporting === "object") return joined;
    }
  }
  const boundary = /^content-type:\s*multipart\/mixed;.*boundary="?([^";\r\n]+)"?/im.exec(vendorData.slice(0, 4096))
    ?.[1];
  const end = boundary === undefined ? -1 : vendorData.lastIndexOf(`--${boundary}--`);
  if (end >= 0) {
    // A multipart document already (a directory of parts): the entry becomes its last part.
    const part = [
      'Content-Type: text/cloud-config; charset="utf-8"',
      "MIME-Version: 1.0",
      "Content-Transfer-Encoding: 7bit",
      'Content-Disposition: attachment; filename="mdserver-boot-events.yaml"',
      "",
      bootEventsVendorData(endpoint),
    ].join("\n");
    return `${vendorData.slice(0, end)}--${boundary}\n${part}${vendorData.slice(end)}`;
  }
  return assembleMultipart([
    { name: "vendor-data", type: typeFromStart(vendorData) ?? "text/cloud-config", body: vendorData },
    { name: "mdserver-boot-events.yaml", type: "text/cloud-config", body: bootEventsVendorData(endpoint) },
  ]).body;
}

/** The document as a YAML mapping, or null when it is not one (several documents, a list, invalid). */
function yamlMapping(text: string): Record<string, unknown> | null {
  try {
    const value = parse(text);
    if (value === null || value === undefined) return {};
    return typeof value === "object" && !Array.isArray(value) ? value as Record<string, unknown> : null;
  } catch {
    return null;
  }
}
