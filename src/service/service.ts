/**
 * The running service: opens KV, builds the store and renderer, and serves
 * the metadata and admin listeners until told to stop.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Config } from "../config/config.ts";
import { type DnsmasqHandle, startDnsmasq } from "../dnsmasq/mod.ts";
import { createTemplateRenderer, guestUrls, type TemplateExtras } from "../guest_api/mod.ts";
import {
  type AdminDeps,
  createAdminHandler,
  createMetadataHandler,
  type MetadataDeps,
  RequestGate,
} from "../http/mod.ts";
import { reloadableConfig } from "./reload.ts";
import { buildPool, poolSize } from "../ipam/ipv4.ts";
import { BurstLog, type EventCounter } from "../log/burst_log.ts";
import type { Logger } from "../log/log.ts";
import { Metrics } from "../log/metrics.ts";
import { AccessRecorder, bootState, InstanceStore, type StoreEvent } from "../store/mod.ts";

/** A started service. */
export interface RunningService {
  /** The instance store. */
  store: InstanceStore;
  /** Port the metadata listener bound (useful when configured as 0). */
  metadataPort: number;
  /** Port the admin listener bound, or null when it listens on a unix socket only. */
  adminPort: number | null;
  /** Stops accepting, lets in-flight requests finish, closes KV. */
  shutdown(): Promise<void>;
  /** Resolves when the service has stopped. */
  finished: Promise<void>;
  /** The dnsmasq integration (records, and the process when managed), or null when disabled. */
  dnsmasq: DnsmasqHandle | null;
  /** Boot tracking. */
  access: AccessRecorder;
  /** The Prometheus metrics. */
  metrics: Metrics;
  /**
   * Takes a new, valid configuration for the next request: what a reload
   * changes (see reload.ts); returns the changed keys that need a restart,
   * whose old values stay in force.
   */
  reload(next: Config): string[];
}

/** Options for starting the service. */
export interface StartOptions {
  /** The service's logger. */
  log: Logger;
  /** Opened KV to use instead of the configured file (tests pass ":memory:" ones). */
  kv?: Deno.Kv;
  /** Called for every store change, after the built-in listeners. */
  onChange?: (event: StoreEvent) => void | Promise<void>;
  /** Keep dnsmasq's files (and, with `manage = yes`, the process); default true. */
  dnsmasq?: boolean;
}

/** Builds the instance store of a configuration over an open KV. */
export function createStore(kv: Deno.Kv, config: Config, contention?: EventCounter): InstanceStore {
  const pool = buildPool({
    network: config.dnsmasq.network,
    gateway: config.dnsmasq.gateway,
    listenAddress: config.mdserver.listenAddress,
    poolStart: config.dnsmasq.poolStart,
    poolEnd: config.dnsmasq.poolEnd,
  });
  return new InstanceStore(kv, {
    pool,
    location: config.service.location,
    spaceProbeDir: dirname(config.mdserver.kvFile),
    ...(contention ? { contention } : {}),
  });
}

/** Opens the configured KV file, creating its folder. */
export async function openKv(config: Config): Promise<Deno.Kv> {
  await Deno.mkdir(dirname(config.mdserver.kvFile), { recursive: true });
  return await Deno.openKv(config.mdserver.kvFile);
}

/** Starts both listeners. */
export async function startService(config: Config, options: StartOptions): Promise<RunningService> {
  const { log } = options;
  const kv = options.kv ?? await openKv(config);
  // One line per burst of store contention, for uploads and boot tracking alike.
  const contention = new BurstLog(log, {
    what: "store busy",
    intervalMs: config.mdserver.storeBusyLogInterval * 1000,
  });
  const store = createStore(kv, config, contention);
  const dnsmasq = options.dnsmasq === false ? null : await startDnsmasq(config, { store, log });
  if (options.onChange) store.subscribe(options.onChange);
  const renderer = createTemplateRenderer(config, log);

  const access = new AccessRecorder(kv, { log, contention });
  // An upload of a known domain is a new start (the hook uploads on
  // `prepare begin`): its boot progress starts again, its host keys stay.
  store.subscribe(async (event) => {
    if (event.type === "upsert" && event.previous !== null && !event.takenBack) {
      await access.resetBoot(event.instance.uuid);
    }
  });
  const metrics = new Metrics();
  registerGauges(metrics, store, access, () => dnsmasq?.restarts ?? 0);
  // Filled in once the metadata listener has its port.
  const extras: TemplateExtras = {};
  // The handlers read these objects on every request: a reload replaces their configuration and renderer.
  const metadataDeps: MetadataDeps = { config, store, renderer, log, access, metrics, extras };
  const adminDeps: AdminDeps = { config, store, log, renderer, access, metrics, extras, dnsmasq };
  const metadataHandler = createMetadataHandler(metadataDeps);
  const adminHandler = createAdminHandler(adminDeps);
  const servers: Deno.HttpServer[] = [];
  const gate = new RequestGate();
  const quiet = () => {};
  // Every listener's requests go through the gate, so a shutdown drains them all.
  const gated =
    <Info>(handler: (request: Request, info: Info) => Promise<Response>) => (request: Request, info: Info) =>
      gate.run(() => handler(request, info));
  let metadataPort = 0;
  let adminPort: number | null = null;
  try {
    const metadata = Deno.serve(
      { hostname: config.mdserver.listenAddress, port: config.mdserver.port, onListen: quiet },
      gated(metadataHandler),
    );
    servers.push(metadata);
    metadataPort = metadata.addr.port;
    Object.assign(extras, guestUrls(config, metadata.addr.port));
    log.info(`metadata listening on ${extras.metadataUrl}/`);

    if (config.admin.socket) {
      await Deno.mkdir(dirname(config.admin.socket), { recursive: true });
      await Deno.remove(config.admin.socket).catch(() => {});
      const server = Deno.serve({ path: config.admin.socket, onListen: quiet }, gated(adminHandler));
      servers.push(server);
      log.info(`admin listening on unix:${config.admin.socket}`);
    }
    {
      const server = Deno.serve(
        { hostname: config.admin.listenAddress, port: config.admin.port, onListen: quiet },
        gated(adminHandler),
      );
      servers.push(server);
      adminPort = server.addr.port;
      log.info(`admin listening on http://${config.admin.listenAddress}:${adminPort}/`);
    }
  } catch (error) {
    // A listener that cannot bind (address in use, not configured on any
    // interface…) stops the start: undo what was started.
    await Promise.all(servers.map((server) => server.shutdown()));
    await dnsmasq?.stop();
    if (!options.kv) kv.close();
    throw error;
  }

  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      // Deno's server.shutdown() cuts off request bodies still arriving, so
      // in-flight requests are drained first; new ones meanwhile get a 503.
      await gate.drain(DRAIN_TIMEOUT_MS);
      await Promise.all(servers.map((server) => server.shutdown()));
      await dnsmasq?.stop();
      await access.flush();
      if (!options.kv) kv.close();
      log.info("stopped");
    })();
    return stopping;
  };
  const finished = Promise.all(servers.map((server) => server.finished)).then(() => {});
  let running = config;
  const reload = (next: Config): string[] => {
    const { effective, needRestart } = reloadableConfig(running, next);
    running = effective;
    const nextRenderer = createTemplateRenderer(effective, log);
    // Requests in flight keep what they started with; the next one sees the new configuration.
    Object.assign(metadataDeps, { config: effective, renderer: nextRenderer });
    Object.assign(adminDeps, { config: effective, renderer: nextRenderer });
    return needRestart;
  };
  return { store, metadataPort, adminPort, shutdown, finished, dnsmasq, access, metrics, reload };
}

/** Longest wait for in-flight requests at shutdown. */
const DRAIN_TIMEOUT_MS = 15_000;

function registerGauges(metrics: Metrics, store: InstanceStore, access: AccessRecorder, restarts: () => number) {
  metrics.gauge("mdserver_instances", "Instances by boot state.", async () => {
    const counts = new Map<string, number>();
    for await (const instance of store.list()) {
      const state = bootState(instance, await access.get(instance.uuid));
      counts.set(state, (counts.get(state) ?? 0) + 1);
    }
    return [...counts].map(([state, count]) => [{ state }, count]);
  });
  metrics.gauge("mdserver_pool_addresses", "Addresses of the pool: size and used.", async () => [
    [{ kind: "size" }, poolSize(store.pool)],
    [{ kind: "used" }, await store.allocatedCount()],
  ]);
  metrics.gauge(
    "mdserver_dnsmasq_restarts",
    "Times the managed dnsmasq was started again.",
    () => Promise.resolve([[{}, restarts()]]),
  );
}
