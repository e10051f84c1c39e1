/**
 * The metadata listener: what guests talk to. Every answer is for the guest
 * whose source address made the request; a stranger gets a 404.
 *
 * Routes: the EC2 API (`/`, `/<version>/…`, IMDSv2 `PUT /<version>/api/token`),
 * the OpenStack API (`/openstack…`), NoCloud over HTTP (`/nocloud/…`),
 * `/service/…`, md_server's `POST /instance-upload` and Nova's `POST
 * /openstack/<version>/password` (the guest's own password, encrypted).
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import {
  checkToken,
  createTokenSigner,
  type DocumentDeps,
  ec2DynamicTree,
  ec2MetadataTree,
  ipNeighLookup,
  isEc2Version,
  isLoopback,
  isOpenstackVersion,
  issueToken,
  lookupPath,
  type NeighbourLookup,
  parseTokenTtl,
  peerIpv4,
  renderUserData,
  type TemplateExtras,
  TOKEN_HEADER,
  TOKEN_TTL_HEADER,
  type TokenSigner,
  type TreeDirectory,
  userDataTarget,
  versionListing,
} from "../guest_api/mod.ts";
import { parseIpv4, poolContains } from "../ipam/ipv4.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import type { Metrics } from "../log/metrics.ts";
import {
  type AccessRecorder,
  type BootJournal,
  hostKeysFromPhoneHome,
  type Instance,
  type InstanceStore,
} from "../store/mod.ts";
import type { TemplateRenderer } from "../user_data/mod.ts";
import { readBody } from "./body.ts";
import { errorToResponse, HttpError, textResponse } from "./errors.ts";
import { answerUpload, type ConfigDriveKeeper } from "./_upload.ts";
import { badTargetError, requestLineUrl } from "./request_target.ts";
import { BOOT_EVENTS_PATH, PHONE_HOME_PATH } from "../guest_api/guest_urls.ts";
import { AnswersAhead } from "./answer_ahead.ts";
import { serviceEndpoint } from "./_service_endpoint.ts";
import { nocloudEndpoint, openstackEndpoint } from "./_document_endpoints.ts";
import { answerGuestPassword } from "./_posted_password.ts";
import {
  type Context,
  type Ec2Trees,
  noteFetch,
  type RequestNotes,
  requireGuest,
  requireMethod,
} from "./_guest_request.ts";
import { answerBootEvent, EventRateLimiter } from "./boot_events.ts";

/** What the metadata handler needs. */
export interface MetadataDeps {
  /** The effective configuration. */
  config: Config;
  /** The instance store: guests are looked up by address. */
  store: InstanceStore;
  /** Renders user-data and vendor-data. */
  renderer: TemplateRenderer;
  /** Where each request's line goes. */
  log: Logger;
  /** Signs IMDSv2 tokens; default: a fresh random key per handler and the wall clock. */
  tokens?: TokenSigner;
  /** Boot tracking: metadata and user-data fetches, phone-home. */
  access: AccessRecorder;
  /** Each instance's boots, fed by fetches and cloud-init's events (`POST /boot-events`); absent: no such endpoint. */
  boots?: BootJournal;
  /** Counts requests and template errors. */
  metrics: Metrics;
  /** Template values known at start (the phone-home URL); read on every render. */
  extras?: TemplateExtras;
  /** The neighbour table for `verify_mac`; default: the kernel's (`ip neigh`). */
  neighbours?: NeighbourLookup;
  /** Keeps config drives: md_server's upload builds them as the admin API's does. */
  configDrives?: ConfigDriveKeeper | null;
  /** Told of each start's upload once it is stored (the guest's answers are prepared ahead). */
  onStartUploaded?: ((instance: Instance) => void) | null;
}

/**
 * Builds each tree once per instance record: the store hands out the same
 * frozen record while it is unchanged, so a guest's crawl builds its tree
 * once, and a changed record (a new object) gets a new tree.
 */
function ec2Trees(config: Config): Ec2Trees {
  const metadata = new WeakMap<Instance, TreeDirectory>();
  const dynamic = new WeakMap<Instance, TreeDirectory>();
  return (section, instance) => {
    const cache = section === "meta-data" ? metadata : dynamic;
    let tree = cache.get(instance);
    if (tree === undefined) {
      tree = section === "meta-data" ? ec2MetadataTree(config, instance) : ec2DynamicTree(config, instance);
      cache.set(instance, tree);
    }
    return tree;
  };
}

/** The APIs' names in answers. */
const API_NAMES = { ec2: "EC2", openstack: "OpenStack", nocloud: "NoCloud" } as const;

/** A request handler as Deno.serve runs it. */
export type Handler = (request: Request, info: { remoteAddr: Deno.NetAddr }) => Promise<Response>;

/** The metadata handler and its answers kept ahead (the guest server's `answerAhead`). */
export type MetadataHandler = Handler & { ahead: AnswersAhead };

/** Builds the metadata listener's handler. */
export function createMetadataHandler(deps: MetadataDeps): MetadataHandler {
  const { log } = deps;
  // The key lives only in this handler: tokens die with the process.
  const signer: Promise<TokenSigner> = deps.tokens ? Promise.resolve(deps.tokens) : createTokenSigner();
  const onTemplateError = () =>
    deps.metrics.increment("mdserver_template_errors_total", "User-data and vendor-data templates that failed.");
  // Rebuilt when a reload replaces deps.config (the handler reads deps on every request).
  let trees = ec2Trees(deps.config);
  let treesConfig = deps.config;
  // One neighbour table reader per handler, so concurrent requests share reads (verify_mac).
  const neighbours = deps.neighbours ?? ipNeighLookup();
  // verify_mac = auto where the table cannot be read: said once, then not tried again.
  let neighbourTableUnreadable = false;
  const eventLimiter = new EventRateLimiter();
  const onNeighbourTableUnreadable = (error: Error) => {
    if (neighbourTableUnreadable) return;
    neighbourTableUnreadable = true;
    log.warning(
      `verify_mac = auto: the neighbour table cannot be read (${error.message}); guests are known by address ` +
        `alone. Apply libvirt's clean-traffic filter to their interfaces (mdserver nwfilter NAME)`,
    );
  };
  let tokenClock: (() => number) | null = null;
  signer.then((resolved) => tokenClock = resolved.now, () => {});
  const ahead = new AnswersAhead(deps, {
    tokenClock: () => tokenClock,
    neighbourTableUnreadable: () => neighbourTableUnreadable,
    tree: (section, instance, config) =>
      config === treesConfig ? trees(section, instance) : ec2Trees(config)(section, instance),
    userData: async (instance, used) => {
      const documents: DocumentDeps = { ...used, log: silentLogger, ...(deps.extras ? { extras: deps.extras } : {}) };
      return (await renderKeptUserData(instance, documents))?.keep ?? null;
    },
    served: (source, instance, path, userData, started) => {
      noteFetch(deps, instance.uuid, "metadata");
      if (userData) noteFetch(deps, instance.uuid, "user-data");
      const seconds = (performance.now() - started) / 1000;
      deps.metrics.observeRequest("ec2", 200, seconds);
      log.info(`${source} ${instance.name} GET ${path} 200 ${(seconds * 1000).toFixed(1)}ms`);
    },
  });
  const onValidToken = (token: string, uuid: string, address: string) => ahead.keepToken(token, uuid, address);
  const handler = async (request: Request, info: { remoteAddr: Deno.NetAddr }) => {
    const started = performance.now();
    const source = peerIpv4(info.remoteAddr.hostname);
    // The request line alone routes: never the Host header.
    const url = requestLineUrl(request);
    const path = url?.pathname ?? "-";
    const notes: RequestNotes = { instance: null, api: url === null ? "invalid" : apiOf(path), keep: null };
    let response: Response;
    try {
      if (url === null) throw badTargetError(request);
      if (deps.config !== treesConfig) {
        trees = ec2Trees(deps.config);
        treesConfig = deps.config;
      }
      const context: Context = {
        ...deps,
        neighbours,
        tokens: await signer,
        notes,
        trees,
        onTemplateError,
        neighbourTableUnreadable,
        onNeighbourTableUnreadable,
        onValidToken,
        eventLimiter,
      };
      response = await route(request, url!, source, context);
      // A guest's EC2 answers, prepared once it is known; its user-data once rendered.
      const { keep, instance } = notes;
      if (instance !== null && notes.api === "ec2" && response.status === 200) {
        if (keep !== null) ahead.keepUserData(source, instance, context, keep);
        else ahead.prepare(source, instance, context);
      }
    } catch (error) {
      response = errorToResponse(error, log, `${request.method} ${path} from ${source}`);
    }
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.observeRequest(notes.api, response.status, seconds);
    log.info(
      `${source} ${notes.instance?.name ?? "-"} ${request.method} ${path} ${response.status} ${
        (seconds * 1000).toFixed(1)
      }ms`,
    );
    return response;
  };
  return Object.assign(handler, { ahead });
}

/** The API a path belongs to, for metrics. */
function apiOf(path: string): string {
  const first = path.split("/")[1] ?? "";
  if (path === "/instance-upload") return "upload";
  if (path === PHONE_HOME_PATH) return "phone_home";
  if (path === BOOT_EVENTS_PATH) return "boot_events";
  if (first === "openstack" || first === "nocloud" || first === "service") return first;
  if (path.endsWith("/api/token")) return "token";
  return "ec2";
}

async function route(request: Request, url: URL, source: string, deps: Context): Promise<Response> {
  const { config } = deps;
  const path = url.pathname;
  const segments = path.split("/").filter((segment) => segment !== "");
  const first = segments[0] ?? "";

  if (path === "/instance-upload") {
    requireMethod(request, ["POST"]);
    return await handleUpload(request, source, deps);
  }
  if (path === PHONE_HOME_PATH) {
    requireMethod(request, ["POST"]);
    return await phoneHome(request, source, deps);
  }
  if (path === BOOT_EVENTS_PATH && deps.boots) {
    requireMethod(request, ["POST"]);
    const instance = await requireGuest(source, deps, false);
    return await answerBootEvent(request, instance, { ...deps, boots: deps.boots }, deps.eventLimiter);
  }
  const { apis } = config.mdserver;
  if (first === "openstack" || first === "nocloud" || path === "/" || isEc2Version(first, config)) {
    const api = first === "openstack" || first === "nocloud" ? first : "ec2";
    if (!apis[api]) throw new HttpError(404, `the ${API_NAMES[api]} API is off ([mdserver] ${api} = no)`);
  }
  if (segments.length === 3 && segments[1] === "api" && segments[2] === "token" && isEc2Version(first, config)) {
    requireMethod(request, ["PUT"]);
    return await tokenEndpoint(request, source, deps);
  }
  if (first === "openstack" && segments.length === 3 && segments[2] === "password" && !path.endsWith("/")) {
    // Nova's password route takes a POST too: the guest's own password, encrypted.
    requireMethod(request, ["GET", "HEAD", "POST"]);
    if (!isOpenstackVersion(segments[1]!)) throw new HttpError(404, `not found: ${path}`);
    const instance = await requireGuest(source, deps);
    await requireToken(request, instance, source, deps);
    return await answerGuestPassword(request, instance, deps);
  }
  requireMethod(request, ["GET", "HEAD"]);

  if (first === "openstack" || first === "nocloud") {
    // imds_tokens = required holds for every API: these have no token of
    // their own, so they take the EC2 one (cloud-init's datasources for them
    // send none, so such guests use Ec2; README "Every API under one rule").
    const instance = await requireGuest(source, deps);
    await requireToken(request, instance, source, deps);
    return first === "openstack"
      ? await openstackEndpoint(segments.slice(1), path, instance, { ...deps, method: request.method })
      : await nocloudEndpoint(segments.slice(1), path, instance, deps);
  }
  if (first === "service") return serviceEndpoint(segments.slice(1), path, source, config);
  if (path === "/") {
    // Not guest-specific, but IMDSv2 rules still apply to it.
    if (request.headers.has(TOKEN_HEADER) || config.mdserver.imdsTokens === "required") {
      await requireToken(request, await requireGuest(source, deps), source, deps);
    }
    return textResponse(versionListing(config));
  }
  if (isEc2Version(first, config)) {
    const instance = await requireGuest(source, deps);
    await requireToken(request, instance, source, deps);
    return await ec2Endpoint(segments.slice(1), path, instance, deps);
  }
  throw new HttpError(404, `not found: ${path}`);
}

/**
 * IMDSv2: `PUT /<version>/api/token` with a TTL of 1–21600 seconds answers
 * a token bound to this guest. A PUT that went through a proxy (it carries
 * X-Forwarded-For) is refused, as AWS does, so a guest's HTTP proxy cannot
 * fetch tokens for its clients.
 */
async function tokenEndpoint(request: Request, source: string, deps: Context): Promise<Response> {
  if (request.headers.has("x-forwarded-for")) {
    throw new HttpError(403, "token requests through a proxy (X-Forwarded-For) are refused");
  }
  const ttl = parseTokenTtl(request.headers.get(TOKEN_TTL_HEADER));
  const instance = await requireGuest(source, deps);
  const token = await issueToken(deps.tokens, { uuid: instance.uuid, address: source }, ttl);
  // Valid for this guest by construction: its first request with it can be answered from what is prepared.
  deps.onValidToken(token, instance.uuid, source);
  return textResponse(token, 200, { [TOKEN_TTL_HEADER]: String(ttl) });
}

/**
 * Checks the IMDSv2 token of an EC2 request: a token that is present must
 * be valid for this guest (as on AWS, even when tokens are optional); with
 * `imds_tokens = required` one must be present.
 */
async function requireToken(request: Request, instance: Instance, source: string, deps: Context): Promise<void> {
  const token = request.headers.get(TOKEN_HEADER);
  if (token === null) {
    if (deps.config.mdserver.imdsTokens === "required") {
      throw new HttpError(401, "an IMDSv2 token is required: PUT /latest/api/token first");
    }
    return;
  }
  const check = await checkToken(deps.tokens, token, { uuid: instance.uuid, address: source });
  if (check === "expired") throw new HttpError(401, "the IMDSv2 token has expired");
  if (check === "invalid") throw new HttpError(401, "the IMDSv2 token is not valid for this instance");
  deps.onValidToken(token, instance.uuid, source);
}

/**
 * cloud-init's phone_home module: a form POST (instance_id, hostname, fqdn,
 * pub_key_*) from the guest once it has booted. Records "booted" and its SSH
 * host keys, for `ctl list` and `ctl known-hosts`. The instance_id is the
 * one the guest's datasource gave: mdserver's for EC2 and NoCloud, the
 * domain's UUID for the OpenStack family (the API and config drives). It is
 * no metadata fetch: a config drive guest that posts it has fetched nothing.
 */
async function phoneHome(request: Request, source: string, deps: Context): Promise<Response> {
  const instance = await requireGuest(source, deps, false);
  const fields = new URLSearchParams(await readBody(request, 64 * 1024));
  const reported = fields.get("instance_id");
  if (reported && reported !== instance.instanceId && reported !== instance.uuid && reported !== "$INSTANCE_ID") {
    throw new HttpError(409, `phone_home instance_id ${reported} is not ${instance.instanceId} (or ${instance.uuid})`);
  }
  const hostKeys = hostKeysFromPhoneHome(fields);
  await deps.access.recordBoot(instance.uuid, fields.get("hostname"), hostKeys);
  deps.log.info(`booted: ${instance.name} ${instance.ipv4} (${Object.keys(hostKeys).length} host keys)`);
  return textResponse("ok");
}

async function ec2Endpoint(
  rest: string[],
  path: string,
  instance: Instance,
  deps: Context,
): Promise<Response> {
  const [section, ...inner] = rest;
  const innerPath = inner.join("/") + (path.endsWith("/") && inner.length > 0 ? "/" : "");
  if (section === undefined) return textResponse("dynamic/\nmeta-data/\nuser-data");
  if (section === "user-data" && inner.length === 0) {
    return await userDataResponse(instance, deps);
  }
  let tree: TreeDirectory | null = null;
  if (section === "meta-data" || section === "dynamic") tree = deps.trees(section, instance);
  if (tree === null) throw new HttpError(404, `not found: ${path}`);
  const found = lookupPath(tree, innerPath);
  if (found.kind === "missing") throw new HttpError(404, `not found: ${path}`);
  return textResponse(found.body);
}

/**
 * An instance's user-data rendered, with what keeps it (null when its
 * template has no signature to check it by); null when it has no template.
 */
async function renderKeptUserData(
  instance: Instance,
  deps: DocumentDeps,
): Promise<{ body: string; contentType: string; keep: RequestNotes["keep"] } | null> {
  // Taken before the render: a change during it shows as a change next time.
  const target = userDataTarget(instance);
  const signature = deps.renderer.userDataSignature(target);
  const rendered = await renderUserData(deps, instance);
  if (rendered === null) return null;
  const keep = signature === null
    ? null
    : { body: rendered.body, contentType: rendered.contentType, userData: { target, signature } };
  return { body: rendered.body, contentType: rendered.contentType, keep };
}

async function userDataResponse(instance: Instance, deps: Context): Promise<Response> {
  const rendered = await renderKeptUserData(instance, deps);
  noteFetch(deps, instance.uuid, "user-data");
  if (rendered === null) {
    throw new HttpError(
      404,
      `no user-data for ${instance.name}: no template for userdata_prefix "${instance.metadata.userdata_prefix}"`,
    );
  }
  deps.notes.keep = rendered.keep;
  return new Response(rendered.body, { headers: { "content-type": rendered.contentType } });
}

async function handleUpload(request: Request, source: string, deps: MetadataDeps): Promise<Response> {
  const { config, store } = deps;
  if (!config.mdserver.legacyUpload) {
    throw new HttpError(404, "POST /instance-upload is off ([mdserver] legacy_upload = no); use the admin API");
  }
  const fromPool = parseIpv4(source) !== null && poolContains(store.pool, parseIpv4(source)!);
  const trusted = isLoopback(source) || source === config.mdserver.listenAddress;
  if (fromPool || !trusted) {
    throw new HttpError(403, `uploads are accepted only from this host, not from ${source}`);
  }
  return await answerUpload(request, deps);
}
