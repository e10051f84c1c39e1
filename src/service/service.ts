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
import { createAdminHandler, createMetadataHandler, RequestGate } from "../http/mod.ts";
import { buildPool, poolSize } from "../ipam/ipv4.ts";
import type { Logger } from "../log/log.ts";
import { Metrics } from "../log/metrics.ts";
import { AccessRecorder, InstanceStore, type StoreEvent } from "../store/mod.ts";
import { stateLabel, StateTally } from "./state_tally.ts";

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
export function createStore(kv: Deno.Kv, config: Config): InstanceStore {
  const pool = buildPool({
    network: config.dnsmasq.network,
    gateway: config.dnsmasq.gateway,
    listenAddress: config.mdserver.listenAddress,
    poolStart: config.dnsmasq.poolStart,
    poolEnd: config.dnsmasq.poolEnd,
  });
  return new InstanceStore(kv, { pool, location: config.service.location });
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
  const store = createStore(kv, config);
  let dnsmasq: DnsmasqHandle | null = null;
  if (options.onChange) store.subscribe(options.onChange);
  const renderer = createTemplateRenderer(config, log);

  const tally = new StateTally();
  store.subscribe((event) => {
    if (event.type === "delete") tally.remove(event.instance.uuid);
    else tally.setInstance(event.instance);
  });
  const access = new AccessRecorder(kv, { log, onWrite: (uuid, record) => tally.setAccess(uuid, record) });
  // An upload of a known domain is a new start (the hook uploads on
  // `prepare begin`): its boot progress starts again, its host keys stay.
  store.subscribe(async (event) => {
    if (event.type === "upsert" && event.previous !== null) await access.resetBoot(event.instance.uuid);
  });
  const metrics = new Metrics();
  registerMetrics(metrics, { store, tally, version: config.service.version, restarts: () => dnsmasq?.restarts ?? 0 });
  // Filled in once the metadata listener has its port.
  const extras: TemplateExtras = {};
  const metadataHandler = createMetadataHandler({ config, store, renderer, log, access, metrics, extras });
  const adminHandler = createAdminHandler({ config, store, log, renderer, access, metrics, extras });
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
    const metadata = listen(
      "the metadata listener",
      "mdserver",
      config.mdserver.listenAddress,
      config.mdserver.port,
      () =>
        Deno.serve(
          { hostname: config.mdserver.listenAddress, port: config.mdserver.port, onListen: quiet },
          gated(metadataHandler),
        ),
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
      const server = listen(
        "the admin listener",
        "admin",
        config.admin.listenAddress,
        config.admin.port,
        () =>
          Deno.serve(
            { hostname: config.admin.listenAddress, port: config.admin.port, onListen: quiet },
            gated(adminHandler),
          ),
      );
      servers.push(server);
      adminPort = server.addr.port;
      log.info(`admin listening on http://${config.admin.listenAddress}:${adminPort}/`);
    }
  } catch (error) {
    // A listener that cannot bind (address in use, not configured on any
    // interface…) stops the start: undo what was started.
    await Promise.all(servers.map((server) => server.shutdown()));
    if (!options.kv) kv.close();
    throw error;
  }

  // Behind the listeners (guests already known are served from KV meanwhile):
  // dnsmasq's records rebuilt from the store, and the process started.
  try {
    if (options.dnsmasq !== false) dnsmasq = await startDnsmasq(config, { store, log });
  } catch (error) {
    await Promise.all(servers.map((server) => server.shutdown()));
    if (!options.kv) kv.close();
    throw error;
  }

  // Behind the listeners: counting the stored instances for /metrics.
  const started = performance.now();
  const counting = tally.fill(store, () => access.all()).then(
    (count) =>
      log.info(`counted ${count} instances by boot state in ${((performance.now() - started) / 1000).toFixed(1)}s`),
    (error) => log.warning(`instances not counted for /metrics: ${(error as Error).message}`),
  );

  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      // Deno's server.shutdown() cuts off request bodies still arriving, so
      // in-flight requests are drained first; new ones meanwhile get a 503.
      await gate.drain(DRAIN_TIMEOUT_MS);
      await counting;
      await Promise.all(servers.map((server) => server.shutdown()));
      await dnsmasq?.stop();
      await access.flush();
      if (!options.kv) kv.close();
      log.info("stopped");
    })();
    return stopping;
  };
  const finished = Promise.all(servers.map((server) => server.finished)).then(() => {});
  return { store, metadataPort, adminPort, shutdown, finished, dnsmasq, access, metrics };
}

/** Binds a listener; an address in use or not on this host is named with its configuration key. */
export function listen(
  what: string,
  section: string,
  host: string,
  port: number,
  bind: () => Deno.HttpServer<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return bind();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `${what} cannot listen on ${host}:${port}: the address is in use (another mdserver? see: ss -ltnp 'sport = :${port}'); ` +
          `stop it or change [${section}] port`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new Error(
        `${what} cannot listen on ${host}:${port}: no interface of this host has ${host}; ` +
          `add it (the mds network up?) or change [${section}] listen_address`,
      );
    }
    throw error;
  }
}

/** Longest wait for in-flight requests at shutdown. */
const DRAIN_TIMEOUT_MS = 15_000;

/** What the metrics read at scrape time; every sampler is O(1) in the instance count. */
interface MetricSources {
  store: InstanceStore;
  tally: StateTally;
  version: string;
  restarts: () => number;
}

function registerMetrics(metrics: Metrics, sources: MetricSources) {
  const { store, tally } = sources;
  metrics.gauge(
    "mdserver_build_info",
    "mdserver's version; always 1.",
    () => Promise.resolve([[{ version: sources.version }, 1]]),
  );
  metrics.declareCounter("mdserver_template_errors_total", "User-data and vendor-data templates that failed.");
  metrics.gauge(
    "mdserver_instances",
    "Instances by boot state.",
    () => Promise.resolve(tally.counts().map(([state, count]) => [{ state: stateLabel(state) }, count])),
  );
  metrics.gauge(
    "mdserver_pool_size_addresses",
    "Addresses the pool can hand out.",
    () => Promise.resolve([[{}, poolSize(store.pool)]]),
  );
  metrics.gauge(
    "mdserver_pool_used_addresses",
    "Addresses of the pool held by instances.",
    async () => [[{}, await store.allocatedCount()]],
  );
  metrics.sampledCounter(
    "mdserver_dnsmasq_restarts_total",
    "Times the managed dnsmasq was started again.",
    () => Promise.resolve([[{}, sources.restarts()]]),
  );
}
