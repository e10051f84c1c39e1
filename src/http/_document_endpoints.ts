/**
 * The OpenStack and NoCloud routes of the metadata API, for the guest the
 * handler found.
 *
 * @module
 */

import {
  isOpenstackVersion,
  NOCLOUD_FILES,
  nocloudFile,
  OPENSTACK_FILES,
  openstackFile,
  openstackVersionListing,
  userDataTarget,
} from "../guest_api/mod.ts";
import type { Instance } from "../store/mod.ts";
import { HttpError, textResponse } from "./errors.ts";
import { type Context, documentResponse, noteFetch } from "./_guest_request.ts";

/**
 * The OpenStack API: `/openstack` lists the versions; `/openstack/<version>/`
 * lists the files this guest has; a file that does not exist is a 404.
 * (`/openstack/<version>/password` is _posted_password.ts's.)
 */
export async function openstackEndpoint(
  rest: string[],
  path: string,
  instance: Instance,
  deps: Context & { method: string },
): Promise<Response> {
  const [version, name, ...more] = rest;
  if (version === undefined) return textResponse(openstackVersionListing());
  if (!isOpenstackVersion(version) || more.length > 0) throw new HttpError(404, `not found: ${path}`);
  if (name === undefined) {
    const names: string[] = [];
    for (const file of OPENSTACK_FILES) {
      // Listed only when present, as Nova does: user_data may be missing.
      // A lookup, not a render: listing must not cost (or fail like) a render.
      if (file !== "user_data" || deps.renderer.hasUserData(userDataTarget(instance))) names.push(file);
    }
    return textResponse(names.join("\n"));
  }
  const document = path.endsWith("/") ? null : await openstackFile(deps, instance, name);
  if (document === null) throw new HttpError(404, `not found: ${path}`);
  if (name === "user_data") noteFetch(deps, instance.uuid, "user-data");
  return documentResponse(document);
}

/**
 * NoCloud over HTTP, for the seed `ds=nocloud;s=http://<address>/nocloud/;dsmode=net`.
 * `network-config` asks for DHCP on the managed interface: the guest is
 * already on the network when it reads it, and dnsmasq hands it the same
 * reserved address (docs/cloud-init.md explains why not a static one).
 */
export async function nocloudEndpoint(
  rest: string[],
  path: string,
  instance: Instance,
  deps: Context,
): Promise<Response> {
  const [name, ...more] = rest;
  if (more.length > 0) throw new HttpError(404, `not found: ${path}`);
  if (name === undefined) return textResponse(NOCLOUD_FILES.join("\n"));
  const document = path.endsWith("/") ? null : await nocloudFile(deps, instance, name, "dhcp");
  if (document === null) throw new HttpError(404, `not found: ${path}`);
  if (name === "user-data") noteFetch(deps, instance.uuid, "user-data");
  return documentResponse(document);
}
