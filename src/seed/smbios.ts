/**
 * Detection help: the libvirt domain XML that makes a stock cloud image's
 * cloud-init find mdserver without changing the image. Pure text; nothing
 * here reads the store, so the snippet can go into a domain before its
 * first start (which is when the hook registers it).
 *
 * - "nocloud": SMBIOS system serial `ds=nocloud;s=http://<listen>/nocloud/;dsmode=net`
 *   (cloud-init's NoCloud datasource reads it from DMI; both 22.4's and
 *   current ds-identify detect it, and current cloud-init logs no deprecation
 *   for it, unlike `nocloud-net`).
 * - "openstack": SMBIOS product name `OpenStack Nova`, which cloud-init's
 *   OpenStack datasource needs before it asks http://169.254.169.254/openstack.
 *
 * @module
 */

import { type Config, loadConfig, metadataUrl } from "../config/mod.ts";

/** Which datasource the snippet selects. */
export type SmbiosDatasource = "nocloud" | "openstack";

/** The base URL guests use to reach the metadata listener, e.g. `http://169.254.169.254`. */
export function metadataBaseUrl(config: Config): string {
  return metadataUrl(config.mdserver.listenAddress, config.mdserver.port);
}

/**
 * The NoCloud seed cloud-init takes from the SMBIOS serial. `dsmode=net`
 * makes 22.4 wait for the network (plain `nocloud` with an http seed is
 * local mode there); `nocloud-net` is deprecated since 24.1. The final "/"
 * matters on 22.4, which appends file names to the URL as is.
 */
export function nocloudSerial(config: Config): string {
  return `ds=nocloud;s=${metadataBaseUrl(config)}/nocloud/;dsmode=net`;
}

function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", "'": "apos", '"': "quot" }[c]};`,
  );
}

/**
 * The `<sysinfo>` element alone (`smbios --xml`), for a script that puts it
 * into a domain: no comment, and nothing else (the domain's `<os>` needs
 * `<smbios mode='sysinfo'/>` besides, or libvirt passes none of it on).
 */
export function sysinfoElement(config: Config, datasource: SmbiosDatasource): string {
  const entries = datasource === "nocloud" ? [`<entry name='serial'>${escapeXml(nocloudSerial(config))}</entry>`] : [
    "<entry name='manufacturer'>OpenStack Foundation</entry>",
    "<entry name='product'>OpenStack Nova</entry>",
  ];
  return [
    "<sysinfo type='smbios'>",
    "  <system>",
    ...entries.map((entry) => `    ${entry}`),
    "  </system>",
    "</sysinfo>",
    "",
  ]
    .join("\n");
}

/**
 * The `<sysinfo>` and `<os><smbios/></os>` snippet for a domain, with one
 * comment line saying where each part goes.
 */
export function smbiosSnippet(
  config: Config,
  options: { datasource: SmbiosDatasource; domain?: string },
): string {
  const target = options.domain ? ` ${escapeXml(options.domain)}` : " <domain>";
  const what = options.datasource === "nocloud"
    ? `NoCloud over HTTP from ${metadataBaseUrl(config)}/nocloud/`
    : "the OpenStack metadata API (it asks http://169.254.169.254/openstack)";
  return [
    `<!-- mdserver: cloud-init uses ${what}.`,
    `     virsh edit${target}: put <sysinfo> inside <domain>, and <smbios> inside its existing <os>. -->`,
    ...sysinfoElement(config, options.datasource).trimEnd().split("\n"),
    "<os>",
    "  <smbios mode='sysinfo'/>",
    "</os>",
    "",
  ].join("\n");
}

/** Usage of `ctl smbios`. */
export const SMBIOS_USAGE = `smbios [DOMAIN] [--datasource nocloud|openstack] [--xml]
      print the libvirt <sysinfo> and <os><smbios/> snippet that makes a stock
      cloud image find mdserver: NoCloud over HTTP (default) or OpenStack;
      --xml prints the <sysinfo> element alone`;

/**
 * `ctl smbios [DOMAIN] [--datasource nocloud|openstack] [--xml]`: prints the
 * snippet (with --xml the `<sysinfo>` element alone) for the configuration
 * in configFile; returns the exit code.
 * `args[0]` is "smbios". Throws TypeError on misuse.
 */
export async function runSmbios(
  line: { args: string[]; options: Map<string, string | true> },
  deps: { configFile: string; print(line: string): void },
): Promise<number> {
  const datasource = line.options.get("datasource") ?? "nocloud";
  if (datasource !== "nocloud" && datasource !== "openstack") {
    throw new TypeError(`--datasource must be nocloud or openstack, got "${datasource}"`);
  }
  const config = await loadConfig(deps.configFile);
  if (line.options.has("xml")) {
    deps.print(sysinfoElement(config, datasource).trimEnd());
    return 0;
  }
  const domain = line.args[1];
  deps.print(smbiosSnippet(config, domain === undefined ? { datasource } : { datasource, domain }).trimEnd());
  return 0;
}
