/**
 * The metadata listener: what guests talk to. Every answer is for the guest
 * whose source address made the request; a stranger gets a 404.
 *
 * @module
 */

import type { Config } from "../config.ts";
import { identifyGuest, isLoopback, peerIpv4 } from "../identity.ts";
import type { Instance } from "../instance.ts";
import { parseIpv4, poolContains } from "../ipam.ts";
import type { Logger } from "../log.ts";
import {
  ec2DynamicTree,
  ec2MetadataTree,
  isEc2Version,
  versionListing,
} from "../metadata/ec2.ts";
import { lookupPath, type TreeDirectory } from "../metadata/tree.ts";
import { readBody, registerDomainXml, uploadSummary } from "../registration.ts";
import type { InstanceStore } from "../store.ts";
import { buildTemplateData } from "../template_data.ts";
import { TemplateError, TemplateNotFoundError, TemplateRenderer } from "../user_data.ts";
import { errorToResponse, HttpError, jsonResponse, textResponse } from "./errors.ts";

/** What the metadata handler needs. */
export interface MetadataDeps {
  config: Config;
  store: InstanceStore;
  renderer: TemplateRenderer;
  log: Logger;
}

/** A request handler as Deno.serve runs it. */
export type Handler = (request: Request, info: { remoteAddr: Deno.NetAddr }) => Promise<Response>;

/** Builds the metadata listener's handler. */
export function createMetadataHandler(deps: MetadataDeps): Handler {
  const { log } = deps;
  return async (request, info) => {
    const started = performance.now();
    const source = peerIpv4(info.remoteAddr.hostname);
    const url = new URL(request.url);
    let response: Response;
    try {
      response = await route(request, url, source, deps);
    } catch (error) {
      response = errorToResponse(error, log, `${request.method} ${url.pathname} from ${source}`);
    }
    const ms = (performance.now() - started).toFixed(1);
    log.info(`${source} ${request.method} ${url.pathname} ${response.status} ${ms}ms`);
    return response;
  };
}

async function route(request: Request, url: URL, source: string, deps: MetadataDeps): Promise<Response> {
  const { config } = deps;
  const path = url.pathname;
  const segments = path.split("/").filter((segment) => segment !== "");
  const first = segments[0] ?? "";

  if (path === "/instance-upload") {
    requireMethod(request, ["POST"]);
    return await handleUpload(request, source, deps);
  }
  requireMethod(request, ["GET", "HEAD"]);

  if (path === "/") return textResponse(versionListing(config));
  if (first === "service") return serviceEndpoint(segments.slice(1), path, source, config);
  if (isEc2Version(first, config)) {
    const instance = await requireGuest(source, deps.store);
    return await ec2Endpoint(segments.slice(1), path, instance, deps);
  }
  throw new HttpError(404, `not found: ${path}`);
}

function requireMethod(request: Request, allowed: string[]) {
  if (!allowed.includes(request.method)) {
    throw new HttpError(405, `method ${request.method} not allowed here`, { allow: allowed.join(", ") });
  }
}

async function requireGuest(source: string, store: InstanceStore): Promise<Instance> {
  const instance = await identifyGuest(store, source);
  if (instance === null) {
    throw new HttpError(404, `unknown client ${source}: no instance has this address`);
  }
  return instance;
}

async function ec2Endpoint(
  rest: string[],
  path: string,
  instance: Instance,
  deps: MetadataDeps,
): Promise<Response> {
  const [section, ...inner] = rest;
  const innerPath = inner.join("/") + (path.endsWith("/") && inner.length > 0 ? "/" : "");
  if (section === undefined) return textResponse("dynamic/\nmeta-data/\nuser-data");
  if (section === "user-data" && inner.length === 0) {
    return await userDataResponse(instance, deps);
  }
  let tree: TreeDirectory | null = null;
  if (section === "meta-data") tree = ec2MetadataTree(deps.config, instance);
  if (section === "dynamic") tree = ec2DynamicTree(deps.config, instance);
  if (tree === null) throw new HttpError(404, `not found: ${path}`);
  const found = lookupPath(tree, innerPath);
  if (found.kind === "missing") throw new HttpError(404, `not found: ${path}`);
  return textResponse(found.body);
}

async function userDataResponse(instance: Instance, deps: MetadataDeps): Promise<Response> {
  const data = buildTemplateData(deps.config, instance);
  try {
    const rendered = await deps.renderer.renderUserData(
      { prefix: instance.metadata.userdata_prefix ?? null, name: instance.name, mac: instance.mac },
      data,
    );
    return new Response(rendered.body, { headers: { "content-type": rendered.contentType } });
  } catch (error) {
    if (error instanceof TemplateNotFoundError) {
      throw new HttpError(404, `no user-data for ${instance.name}: ${error.message}`);
    }
    if (error instanceof TemplateError) {
      deps.log.error(
        `user-data for ${instance.name}: template ${error.file}${
          error.line === null ? "" : ` line ${error.line}`
        }: ${error.message}`,
      );
      throw new HttpError(500, `user-data template failed for ${instance.name}; see the mdserver log`);
    }
    throw error;
  }
}

async function handleUpload(request: Request, source: string, deps: MetadataDeps): Promise<Response> {
  const { config, store } = deps;
  const fromPool = parseIpv4(source) !== null && poolContains(store.pool, parseIpv4(source)!);
  const trusted = isLoopback(source) || source === config.mdserver.listenAddress;
  if (fromPool || !trusted) {
    throw new HttpError(403, `uploads are accepted only from this host, not from ${source}`);
  }
  const xml = await readBody(request);
  const result = await registerDomainXml(xml, { store, config });
  deps.log.info(
    `upload: ${result.instance.name} ${result.instance.mac} ${result.instance.ipv4} ${
      result.created ? "created" : "updated"
    }`,
  );
  return jsonResponse(uploadSummary(result), result.created ? 201 : 200);
}

const SERVICE_KEYS = ["name", "type", "version", "location", "ec2_versions"] as const;

function serviceEndpoint(rest: string[], path: string, source: string, config: Config): Response {
  const [key, ...more] = rest;
  if (more.length > 0) throw new HttpError(404, `not found: ${path}`);
  if (key === undefined) return textResponse([...SERVICE_KEYS, "configuration"].join("\n"));
  switch (key) {
    case "name":
      return textResponse(config.service.name);
    case "type":
      return textResponse(config.service.type);
    case "version":
      return textResponse(`${config.service.version} (${config.service.releaseDate})`);
    case "location":
      return textResponse(config.service.location);
    case "ec2_versions":
      return textResponse(config.service.ec2Versions.join("\n"));
    case "configuration": {
      if (!isLoopback(source) && source !== config.mdserver.listenAddress) {
        throw new HttpError(401, `access denied for ${source}`);
      }
      const lines = [...config.raw]
        .filter(([id]) => !/password|public-keys|template-data/.test(id))
        .map(([id, value]) => `${id}=${value}`);
      return textResponse(lines.join("\n"));
    }
  }
  throw new HttpError(404, `not found: ${path}`);
}
