/**
 * The admin listener: a unix socket (root and the service's group), and
 * optionally loopback TCP, where every request needs the bearer token;
 * never the metadata address. Uploads from the hook and `curl`, and what
 * `ctl` reads.
 *
 * Routes:
 * - GET  /health
 * - GET  /metrics                       Prometheus text
 * - POST /v1/instances                  body: domain XML → 201/200 JSON
 * - GET  /v1/instances                  → JSON list (snake_case), each with `access`, `boot_state`, `since`;
 *        `?limit=N[&after=UUID]` a page in UUID order (header `x-next-after` when full)
 * - GET  /v1/instances/<ref>            → JSON (ref: name, UUID, instance-id, MAC or address)
 * - DELETE /v1/instances/<ref>
 * - POST /v1/instances/delete          body {"uuids": [...]}: many at once → {deleted: [{name, uuid, ipv4}]}
 * - POST /v1/instances/<ref>/stopped    the hook's `release end`
 * - POST|DELETE /v1/instances/<ref>/password  set (JSON body) or generate (empty body), or remove (with the guest's)
 * - GET /v1/instances/<ref>/password        the password the guest posted (encrypted, base64), or null
 * - GET  /v1/instances/<ref>/user-data  exactly what the guest receives
 * - GET  /v1/instances/<ref>/vendor-data
 * - GET  /v1/instances/<ref>/meta-data  the EC2 meta-data tree as JSON
 * - GET  /v1/instances/<ref>/openstack/<file>, /nocloud/<file>
 * - GET  /v1/known-hosts                ssh known_hosts from phone-home host keys
 * - GET  /v1/boots, /v1/boots/stream, /v1/instances/<ref>/boots   boots (_boots_admin.ts)
 * - POST /v1/reload                     read the configuration, keys and templates again (as SIGHUP)
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { hostNames, orderedNames } from "../domain/mod.ts";
import {
  type DocumentDeps,
  ec2MetadataTree,
  nocloudFile,
  openstackFile,
  peerIpv4,
  renderUserData,
  renderVendorData,
  type TemplateExtras,
  treeToJson,
} from "../guest_api/mod.ts";
import { parseIpv4, poolContains } from "../ipam/ipv4.ts";
import type { Logger } from "../log/log.ts";
import type { Metrics } from "../log/metrics.ts";
import {
  type AccessRecorder,
  type Boot,
  type BootJournal,
  type Instance,
  type InstanceStore,
  knownHostsLines,
  StoreUnavailableError,
} from "../store/mod.ts";
import { bootJson, bootsRoute } from "./_boots_admin.ts";
import type { TemplateRenderer } from "../user_data/mod.ts";
import { badTargetError, requestLineUrl } from "./request_target.ts";
import { errorToResponse, HttpError, jsonResponse, textResponse } from "./errors.ts";
import { instanceJson } from "./_instance_json.ts";
import { answerUpload, type ConfigDriveKeeper } from "./_upload.ts";
import { answerPassword } from "./_password.ts";

/** What the admin handler needs. */
export interface AdminDeps {
  /** The effective configuration. */
  config: Config;
  /** The instance store. */
  store: InstanceStore;
  /** Where each request's line goes. */
  log: Logger;
  /** Renders previews exactly as guests get them. */
  renderer: TemplateRenderer;
  /** Boot tracking, shown with each instance. */
  access: AccessRecorder;
  /** Every instance's boots (GET /v1/boots…); absent: no such routes. */
  boots?: BootJournal;
  /** Counts requests; served at /metrics. */
  metrics: Metrics;
  /** Template values known at start (the phone-home URL). */
  extras?: TemplateExtras;
  /** The bearer token TCP requests must carry; null refuses every TCP request. Socket requests need none. */
  token?: string | null;
  /** dnsmasq as the service runs it, for /health; null or absent when dnsmasq is not kept. */
  dnsmasq?: DnsmasqState | null;
  /** Keeps the config drives (built on upload, rebuilt on a new password); null or absent: none are kept. */
  configDrives?: ConfigDriveKeeper | null;
  /** Told of each start's upload once it is stored (the guest's answers are prepared ahead). */
  onStartUploaded?: ((instance: Instance) => void) | null;
  /** Reads the configuration again (POST /v1/reload); absent when the service cannot. */
  reload?: () => Promise<ReloadOutcome>;
}

/** What a reload did: refused with the problems, or taken with the keys that need a restart. */
export type ReloadOutcome =
  | { ok: true; files: string[]; needRestart: string[] }
  | { ok: false; problems: string[] };

/** What /health says of dnsmasq. */
export interface DnsmasqState {
  /** Whether mdserver runs dnsmasq itself. */
  readonly managed: boolean;
  /** Pid of the managed dnsmasq, or null when it is not running (between restarts, or crash-looping). */
  readonly pid: number | null;
  /** How often the managed dnsmasq was started again. */
  readonly restarts: number;
}

/** A request handler as Deno.serve runs it, on TCP or the unix socket. */
export type AdminHandler = (request: Request, info: { remoteAddr: Deno.Addr }) => Promise<Response>;

/** Builds the admin listener's handler. */
export function createAdminHandler(deps: AdminDeps): AdminHandler {
  return async (request: Request, info: { remoteAddr: Deno.Addr }): Promise<Response> => {
    const started = performance.now();
    // The request line alone routes: never the Host header.
    const url = requestLineUrl(request);
    const path = url?.pathname ?? "-";
    const source = info.remoteAddr.transport === "unix" ? "unix" : peerIpv4((info.remoteAddr as Deno.NetAddr).hostname);
    let response: Response;
    try {
      refuseManagedNetwork(source, deps.store);
      if (source !== "unix") requireToken(request, deps.token ?? null);
      if (url === null) throw badTargetError(request);
      response = await route(request, url, deps);
    } catch (error) {
      response = errorToResponse(error, deps.log, `admin ${request.method} ${path}`);
    }
    const seconds = (performance.now() - started) / 1000;
    if (path !== "/metrics") deps.metrics.observeRequest("admin", response.status, seconds);
    deps.log.info(
      `admin ${source} ${request.method} ${path} ${response.status} ${(seconds * 1000).toFixed(1)}ms`,
    );
    return response;
  };
}

/** TCP requests prove they are root's by the token only root can read. */
function requireToken(request: Request, token: string | null) {
  const given = request.headers.get("authorization")?.match(/^Bearer\s+(\S+)$/i)?.[1] ?? null;
  if (token === null || given === null || !sameText(given, token)) {
    throw new HttpError(401, "the admin API over TCP needs its token (Authorization: Bearer, see [admin] token_file)");
  }
}

/** Compares in time that does not depend on where the texts differ. */
function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let difference = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) difference |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return difference === 0;
}

function refuseManagedNetwork(source: string, store: InstanceStore) {
  const address = parseIpv4(source);
  if (address !== null && poolContains(store.pool, address)) {
    throw new HttpError(403, `the admin API is not served to the managed network (${source})`);
  }
}

/** A percent-decoded path segment; malformed encoding ("%E0%A4%A") is the client's error. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    const shown = segment.length > 80 ? `${segment.slice(0, 77)}...` : segment;
    throw new HttpError(400, `malformed percent-encoding in path segment "${shown}"`);
  }
}

/** An instance with what boot tracking knows of it (snake_case, see _instance_json.ts), its boot and (`history`) earlier ones. */
async function withAccess(instance: Instance, deps: AdminDeps, history = false) {
  const boots = deps.boots ? await deps.boots.get(instance.uuid) : [];
  return {
    ...instanceJson(instance, await deps.access.get(instance.uuid)),
    boot: boots[0] ? bootJson(boots[0]) : null,
    ...(history ? { boots: boots.map(bootJson) } : {}),
  };
}

/** Most instances in one page of `GET /v1/instances?limit=`. */
const MAX_PAGE = 10_000;

/**
 * `GET /v1/instances`: every instance; with `?limit=N` (1–10,000) a page of
 * at most N in UUID order, the next one from `?after=<last UUID>`. A full
 * page says where the next begins in `x-next-after`. A page reads only its
 * own instances and their boot records, whatever the count.
 */
async function listInstances(url: URL, deps: AdminDeps): Promise<Response> {
  const limitText = url.searchParams.get("limit");
  const after = url.searchParams.get("after") ?? undefined;
  if (limitText === null) {
    if (after !== undefined) throw new HttpError(400, "after= needs limit=");
    const records = await deps.access.all();
    const boots = deps.boots ? await deps.boots.all() : new Map<string, Boot[]>();
    const instances = [];
    for await (const instance of deps.store.list()) {
      const boot = boots.get(instance.uuid)?.[0];
      instances.push({
        ...instanceJson(instance, records.get(instance.uuid) ?? null),
        boot: boot ? bootJson(boot) : null,
      });
    }
    return jsonResponse(instances);
  }
  const limit = /^\d{1,5}$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= MAX_PAGE)) {
    throw new HttpError(400, `limit must be a whole number from 1 to ${MAX_PAGE}`);
  }
  if (after !== undefined && !/^[0-9a-f-]{36}$/i.test(after)) throw new HttpError(400, "after must be a UUID");
  const page: Instance[] = [];
  for await (const instance of deps.store.list({ limit, ...(after === undefined ? {} : { after }) })) {
    page.push(instance);
  }
  const records = await deps.access.getMany(page.map((instance) => instance.uuid));
  const answers = [];
  for (const [index, instance] of page.entries()) {
    const boot = deps.boots ? (await deps.boots.get(instance.uuid))[0] : undefined;
    answers.push({ ...instanceJson(instance, records[index] ?? null), boot: boot ? bootJson(boot) : null });
  }
  const response = jsonResponse(answers);
  if (page.length === limit) response.headers.set("x-next-after", page[page.length - 1]!.uuid);
  return response;
}

/** Removes many instances in one request; the answer lists those removed. */
async function deleteMany(request: Request, deps: AdminDeps): Promise<Response> {
  let uuids: unknown;
  try {
    uuids = (await request.json()).uuids;
  } catch {
    throw new HttpError(400, 'the body must be JSON: {"uuids": [...]}');
  }
  if (!Array.isArray(uuids) || uuids.some((uuid) => typeof uuid !== "string") || uuids.length > 10_000) {
    throw new HttpError(400, '"uuids" must be a list of at most 10000 UUIDs');
  }
  const deleted = (await deps.store.deleteMany(uuids as string[]))
    .map((instance) => ({ name: instance.name, uuid: instance.uuid, ipv4: instance.ipv4 }));
  deps.log.info(`deleted: ${deleted.length} of ${uuids.length} instances in one request`);
  return jsonResponse({ deleted });
}

async function route(request: Request, url: URL, deps: AdminDeps): Promise<Response> {
  const segments = url.pathname.split("/").filter((segment) => segment !== "").map(decodeSegment);
  const method = request.method;
  if (deps.boots) {
    const answer = await bootsRoute(request, url, segments, { store: deps.store, boots: deps.boots });
    if (answer !== null) return answer;
  }
  if (url.pathname === "/health" && method === "GET") return await health(deps);
  if (url.pathname === "/metrics" && method === "GET") {
    return textResponse(await deps.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" });
  }
  if (url.pathname === "/v1/known-hosts" && method === "GET") return await knownHosts(deps);
  if (url.pathname === "/v1/reload" && method === "POST") return await reload(deps);
  if (segments[0] !== "v1" || segments[1] !== "instances") {
    throw new HttpError(404, `not found: ${url.pathname}`);
  }
  const ref = segments[2];
  if (ref === "delete" && segments.length === 3 && method === "POST") return await deleteMany(request, deps);
  if (ref === undefined) {
    if (method === "GET") return await listInstances(url, deps);
    if (method === "POST") return await answerUpload(request, deps);
    throw new HttpError(405, `method ${method} not allowed on /v1/instances`);
  }
  const instance = await deps.store.find(ref);
  if (instance === null) throw new HttpError(404, `no instance "${ref}"`);
  const [action, file, ...more] = segments.slice(3);
  if (more.length > 0) throw new HttpError(404, `not found: ${url.pathname}`);
  if (action === undefined && method === "GET") return jsonResponse(await withAccess(instance, deps, true));
  if (action === undefined && method === "DELETE") {
    await deps.store.delete(instance.uuid);
    deps.log.info(`deleted: ${instance.name} ${instance.ipv4}`);
    return jsonResponse({ deleted: instance.name, uuid: instance.uuid, ipv4: instance.ipv4 });
  }
  if (action === "stopped" && method === "POST") {
    const updated = await deps.store.setState(instance.uuid, "stopped");
    if (updated?.state === "stopped") {
      deps.log.info(`stopped: ${instance.name}`);
      // Rebuilt from the record, the image no longer holds a password that was delivered at this start.
      await deps.configDrives?.refresh(updated);
    } else deps.log.info(`stop of ${instance.name} ignored: it runs on ${updated?.host} now (migrated)`);
    return jsonResponse(updated === null ? null : instanceJson(updated, await deps.access.get(updated.uuid)));
  }
  if (action === "password" && file === undefined) {
    return await answerPassword(request, instance, deps);
  }
  if (method === "GET" && action !== undefined) return await preview(instance, action, file, deps);
  throw new HttpError(404, `not found: ${method} ${url.pathname}`);
}

/**
 * The service's health: 503 when a managed dnsmasq is not running (guests
 * would get no DHCP answer) or the store cannot be reached (uploads are
 * refused; guests are still served what was last seen on etcd), with the
 * state of both either way.
 */
async function health(deps: AdminDeps): Promise<Response> {
  let instances: number | null = null;
  try {
    instances = await deps.store.allocatedCount();
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
  }
  const { backend, reachable, lastContactMs, details, watch } = deps.store.status();
  const store = {
    backend,
    reachable: instances !== null && reachable,
    last_contact: lastContactMs === null ? null : new Date(lastContactMs).toISOString(),
    ...details,
    ...(watch
      ? {
        watch: {
          watching: watch.watching,
          instances: watch.instances,
          revision: watch.revision,
          lost_since: watch.lostSinceMs === null ? null : new Date(watch.lostSinceMs).toISOString(),
        },
      }
      : {}),
  };
  const state = deps.dnsmasq ?? null;
  const dnsmasq = state === null
    ? { state: "off" }
    : state.managed
    ? { state: state.pid === null ? "down" : "running", pid: state.pid, restarts: state.restarts }
    : { state: "not managed" };
  const down = dnsmasq.state === "down";
  const status = instances === null ? "store unavailable" : down ? "dnsmasq down" : "ok";
  return jsonResponse({ status, instances, dnsmasq, store }, status === "ok" ? 200 : 503);
}

/** What the guest would receive, rendered the same way. */
async function preview(
  instance: Instance,
  action: string,
  file: string | undefined,
  deps: AdminDeps,
): Promise<Response> {
  const documents: DocumentDeps = {
    config: deps.config,
    renderer: deps.renderer,
    log: deps.log,
    ...(deps.extras ? { extras: deps.extras } : {}),
  };
  if (action === "user-data" && file === undefined) {
    const rendered = await renderUserData(documents, instance);
    if (rendered === null) throw new HttpError(404, `no user-data for ${instance.name}`);
    return new Response(rendered.body, { headers: { "content-type": rendered.contentType } });
  }
  if (action === "vendor-data" && file === undefined) {
    const rendered = await renderVendorData(documents, instance);
    if (rendered === null) throw new HttpError(404, "no vendordata_template is configured");
    return textResponse(rendered);
  }
  if (action === "meta-data" && file === undefined) {
    return jsonResponse(treeToJson(ec2MetadataTree(deps.config, instance)));
  }
  if ((action === "openstack" || action === "nocloud") && file !== undefined) {
    const document = action === "openstack"
      ? await openstackFile(documents, instance, file)
      : await nocloudFile(documents, instance, file, "dhcp");
    if (document === null) throw new HttpError(404, `no ${action} file "${file}"`);
    return new Response(document.body, { headers: { "content-type": document.contentType } });
  }
  throw new HttpError(404, `nothing to show as "${action}"`);
}

async function knownHosts(deps: AdminDeps): Promise<Response> {
  const entries = [];
  for await (const instance of deps.store.list()) {
    const access = await deps.access.get(instance.uuid);
    if (!access || Object.keys(access.hostKeys).length === 0) continue;
    const names = hostNames(instance.name, deps.config.dnsmasq.prefix, deps.config.dnsmasq.domain);
    entries.push({
      names: orderedNames(names, ["base", "prefix", "fqdn"]),
      ipv4: instance.ipv4,
      hostKeys: access.hostKeys,
    });
  }
  const lines = knownHostsLines(entries);
  return textResponse(lines.length > 0 ? lines.join("\n") + "\n" : "");
}

async function reload(deps: AdminDeps): Promise<Response> {
  if (!deps.reload) throw new HttpError(404, "this service cannot reload in place");
  const outcome = await deps.reload();
  if (!outcome.ok) {
    return jsonResponse({ error: `reload refused: ${outcome.problems.join("; ")}`, problems: outcome.problems }, 422);
  }
  return jsonResponse({ reloaded: outcome.files, need_restart: outcome.needRestart });
}
