/**
 * Every document a guest can read, rendered for one instance: the one
 * source of truth for the HTTP APIs (src/http/metadata.ts) and the seed
 * images (src/seed_iso.ts), so an image holds exactly what the API serves.
 *
 * @module
 */

import type { Config } from "../../config/config.ts";
import { DocumentTemplateError } from "../errors.ts";
import type { Instance } from "../../store/instance.ts";
import type { Logger } from "../../log/log.ts";
import { buildTemplateData, type TemplateExtras } from "../template_data.ts";
import {
  type RenderedTemplate,
  TemplateError,
  TemplateNotFoundError,
  type TemplateRenderer,
  type UserDataTarget,
} from "../../user_data/mod.ts";
import { ec2MetadataTree } from "./ec2.ts";
import { type NetworkMode, openstackNetworkData } from "./network_config.ts";
import { nocloudMetaData, nocloudNetworkConfig } from "./nocloud.ts";
import { openstackMetaData, openstackVendorData, openstackVendorData2 } from "./openstack.ts";
import { treeToJson } from "./tree.ts";
import { cloudstackMetadataFiles } from "./cloudstack.ts";
import { createHash } from "node:crypto";

/** What rendering needs. */
export interface DocumentDeps {
  /** The effective configuration. */
  config: Config;
  /** Renders user-data and vendor-data templates. */
  renderer: TemplateRenderer;
  /** Where template errors are logged, with file and line. */
  log: Logger;
  /** Request-time template values (phone-home URL…). */
  extras?: TemplateExtras;
  /** Called when a template fails (counted in metrics). */
  onTemplateError?: () => void;
}

/** A rendered document and its content type. */
export interface Document {
  /** The document's text. */
  body: string;
  /** Its Content-Type. */
  contentType: string;
}

const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json";

/** Who user-data is looked up for: the domain's userdata_prefix, name and MAC. */
export function userDataTarget(instance: Instance): UserDataTarget {
  return { prefix: instance.metadata.userdata_prefix ?? null, name: instance.name, mac: instance.mac };
}

/**
 * The instance's user-data; null when the domain names a `userdata_prefix`
 * that matches no template (md_server's 404). A template error is logged
 * with file and line and becomes a 500, never a partial document.
 */
export async function renderUserData(
  deps: DocumentDeps,
  instance: Instance,
): Promise<RenderedTemplate | null> {
  const data = buildTemplateData(deps.config, instance, deps.extras);
  try {
    return await deps.renderer.renderUserData(userDataTarget(instance), data);
  } catch (error) {
    if (error instanceof TemplateNotFoundError) return null;
    throw templateFailure(error, "user-data", instance, deps);
  }
}

/**
 * The site-wide vendor-data (`vendordata_template`) rendered for the
 * instance; null when none is configured. Errors as for user-data; a
 * configured template that has gone missing is an error too.
 */
export async function renderVendorData(
  deps: DocumentDeps,
  instance: Instance,
): Promise<string | null> {
  const path = deps.config.mdserver.vendordataTemplate;
  if (path === null) return null;
  const data = buildTemplateData(deps.config, instance, deps.extras);
  try {
    return (await deps.renderer.renderPath(path, data)).body;
  } catch (error) {
    throw templateFailure(error, "vendor-data", instance, deps);
  }
}

function templateFailure(
  error: unknown,
  what: string,
  instance: Instance,
  deps: DocumentDeps,
): unknown {
  if (error instanceof TemplateError) {
    deps.onTemplateError?.();
    deps.log.error(
      `${what} for ${instance.name}: template ${error.file}${
        error.line === null ? "" : ` line ${error.line}`
      }: ${error.message}`,
    );
    return new DocumentTemplateError(`${what} template failed for ${instance.name}; see the mdserver log`, {
      cause: error,
    });
  }
  if (error instanceof TemplateNotFoundError) {
    deps.log.error(`${what} for ${instance.name}: ${error.message}`);
    return new DocumentTemplateError(`${what} template is missing; see the mdserver log`, { cause: error });
  }
  return error;
}

function json(value: unknown): Document {
  return {
    body: JSON.stringify(value, null, 2) + "\n",
    contentType: JSON_TYPE,
  };
}

/** One file of an OpenStack version (`meta_data.json`, `user_data`…); null when it does not exist. */
export async function openstackFile(
  deps: DocumentDeps,
  instance: Instance,
  name: string,
): Promise<Document | null> {
  switch (name) {
    case "meta_data.json":
      return json(openstackMetaData(deps.config, instance));
    case "network_data.json":
      return json(openstackNetworkData(deps.config, instance));
    case "user_data": {
      const rendered = await renderUserData(deps, instance);
      return rendered === null ? null : { body: rendered.body, contentType: rendered.contentType };
    }
    case "vendor_data.json":
      return json(openstackVendorData(await renderVendorData(deps, instance)));
    case "vendor_data2.json":
      return json(openstackVendorData2());
  }
  return null;
}

/**
 * One NoCloud file; null when the name is not one. `user-data` and
 * `vendor-data` are empty rather than missing (NoCloud needs user-data and
 * retries missing files for seconds).
 */
export async function nocloudFile(
  deps: DocumentDeps,
  instance: Instance,
  name: string,
  mode: NetworkMode,
): Promise<Document | null> {
  switch (name) {
    case "meta-data":
      return {
        body: nocloudMetaData(deps.config, instance),
        contentType: TEXT,
      };
    case "user-data": {
      const rendered = await renderUserData(deps, instance);
      return rendered === null
        ? { body: "", contentType: TEXT }
        : { body: rendered.body, contentType: rendered.contentType };
    }
    case "vendor-data":
      return {
        body: (await renderVendorData(deps, instance)) ?? "",
        contentType: TEXT,
      };
    case "network-config":
      return {
        body: nocloudNetworkConfig(deps.config, instance, mode),
        contentType: TEXT,
      };
  }
  return null;
}

/**
 * A config drive's files (path → body), the layouts of OpenStack and of
 * CloudStack's ConfigDrive provider side by side:
 * - `openstack/latest/*` exactly as `/openstack/latest/*` serves them
 *   (user_data left out when there is none), but for `admin_pass` in
 *   meta_data.json while a password waits to be delivered (Nova writes it
 *   on config drives only; cloudbase-init reads it there);
 * - `ec2/latest/meta-data.json`, the EC2 meta-data tree as JSON, which
 *   cloud-init's ConfigDrive datasource reads (as `ec2-metadata`);
 * - `cloudstack/metadata/*.txt`, `cloudstack/userdata/user_data.txt` (the
 *   same bytes as user_data), and while a password waits to be delivered
 *   `cloudstack/password/vm_password.txt` with its
 *   `vm_password_md5checksum` (what CloudStack's guest scripts compare).
 */
export async function configDriveFiles(
  deps: DocumentDeps,
  instance: Instance,
): Promise<Map<string, string>> {
  const files = await collect(
    ["meta_data.json", "user_data", "vendor_data.json", "vendor_data2.json", "network_data.json"],
    (name) => openstackFile(deps, instance, name),
    "openstack/latest/",
  );
  const clear = instance.password?.clear ?? null;
  if (clear !== null) {
    files.set(
      "openstack/latest/meta_data.json",
      json({ ...openstackMetaData(deps.config, instance), admin_pass: clear }).body,
    );
  }
  files.set(
    "ec2/latest/meta-data.json",
    JSON.stringify(
      treeToJson(ec2MetadataTree(deps.config, instance)),
      null,
      2,
    ) + "\n",
  );
  for (const [path, text] of cloudstackMetadataFiles(deps.config, instance)) files.set(path, text);
  const userData = files.get("openstack/latest/user_data");
  if (userData !== undefined) files.set("cloudstack/userdata/user_data.txt", userData);
  if (clear !== null) {
    files.set("cloudstack/password/vm_password.txt", clear);
    files.set("cloudstack/password/vm_password_md5checksum", createHash("md5").update(clear).digest("hex"));
  }
  return files;
}

/**
 * A NoCloud seed's files: as `/nocloud/` serves them, except that
 * `network-config` gives the address statically (a seed is read before the
 * network is up).
 */
export async function nocloudSeedFiles(
  deps: DocumentDeps,
  instance: Instance,
): Promise<Map<string, string>> {
  return await collect(
    ["meta-data", "user-data", "vendor-data", "network-config"],
    (name) => nocloudFile(deps, instance, name, "static"),
    "",
  );
}

/** The documents that exist among `names`, by `prefix` + name. */
async function collect(
  names: string[],
  render: (name: string) => Promise<Document | null>,
  prefix: string,
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of names) {
    const document = await render(name);
    if (document !== null) files.set(`${prefix}${name}`, document.body);
  }
  return files;
}
