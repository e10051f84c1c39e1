/**
 * What a configuration reload (SIGHUP) changes in a running service: the
 * keys that only shape answers — public keys, `[template-data]`, templates
 * and their folder, the token mode, the per-API switches, `verify_mac`, log
 * levels, `[service]` — take effect for the next request. Keys that shape
 * what was started (listeners, the store, dnsmasq and its network, the admin
 * socket) keep their running values until a restart; the reload names them.
 *
 * @module
 */

import type { Config } from "../config/config.ts";

/** `section.key` ids (or whole sections, ending in ".") a reload applies. */
const RELOADABLE = [
  "mdserver.imds_tokens",
  "mdserver.ec2",
  "mdserver.openstack",
  "mdserver.nocloud",
  "mdserver.verify_mac",
  "mdserver.userdata_dir",
  "mdserver.userdata_suffixes",
  "mdserver.default_template",
  "mdserver.vendordata_template",
  "mdserver.password",
  "mdserver.debug",
  "mdserver.debug_userdata",
  "mdserver.loglevel",
  "events.enabled",
  "loglevels.",
  "public-keys.",
  "template-data.",
  "service.",
  "_include_.",
];

function reloadable(id: string): boolean {
  // The store writes the location into every record it keeps: it is fixed at start.
  if (id === "service.location") return false;
  return RELOADABLE.some((entry) => entry.endsWith(".") ? id.startsWith(entry) : id === entry);
}

/**
 * The configuration to run with after a reload: `next`'s reloadable parts
 * over `running`'s others, and the ids of changed keys that need a restart.
 */
export function reloadableConfig(running: Config, next: Config): { effective: Config; needRestart: string[] } {
  const ids = new Set([...running.raw.keys(), ...next.raw.keys()]);
  const needRestart = [...ids].filter((id) => !reloadable(id) && running.raw.get(id) !== next.raw.get(id)).sort();
  const { mdserver } = next;
  const effective: Config = {
    ...running,
    files: next.files,
    warnings: next.warnings,
    mdserver: {
      ...running.mdserver,
      imdsTokens: mdserver.imdsTokens,
      apis: mdserver.apis,
      verifyMac: mdserver.verifyMac,
      userdataDir: mdserver.userdataDir,
      userdataSuffixes: mdserver.userdataSuffixes,
      defaultTemplate: mdserver.defaultTemplate,
      vendordataTemplate: mdserver.vendordataTemplate,
      password: mdserver.password,
      debug: mdserver.debug,
      debugUserdata: mdserver.debugUserdata,
    },
    loglevels: next.loglevels,
    events: { ...running.events, enabled: next.events.enabled },
    publicKeys: next.publicKeys,
    templateData: next.templateData,
    service: { ...next.service, location: running.service.location },
    raw: new Map([...next.raw].map(([id, value]) => [id, reloadable(id) ? value : running.raw.get(id) ?? value])),
  };
  return { effective, needRestart };
}
