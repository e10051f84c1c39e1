/**
 * The running service: opens KV, builds the store and renderer, and serves
 * the metadata and admin listeners until told to stop.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Config } from "../config/config.ts";
import { sleep } from "../io/mod.ts";
import { type DnsmasqHandle, startDnsmasq } from "../dnsmasq/mod.ts";
import { createTemplateRenderer, guestUrls, isLoopback, type TemplateExtras } from "../guest_api/mod.ts";
import {
  type AdminDeps,
  createAdminHandler,
  createMetadataHandler,
  MAX_BODY_BYTES,
  type MetadataDeps,
  RequestGate,
} from "../http/mod.ts";
import { formatRefusalReport, type GuestServer, serveGuests } from "../http_server/mod.ts";
import { reloadableConfig } from "./reload.ts";
import { buildPool, poolSize } from "../ipam/ipv4.ts";
import { BurstLog, type EventCounter } from "../log/burst_log.ts";
import type { Logger } from "../log/log.ts";
import { Metrics } from "../log/metrics.ts";
import { AccessRecorder, type BootJournal, bootState, InstanceStore, type StoreEvent } from "../store/mod.ts";
import { startBootTracking } from "./boot_tracking.ts";
import { prepareSocketPath, restrictSocket } from "./_admin_socket.ts";
import { loadAdminToken, permittedEnv } from "./_admin_token.ts";
import { listenWhenAvailable } from "./_listen.ts";

/** A started service. */
export interface RunningService {
  /** The instance store. */
  store: InstanceStore;
  /** Port the metadata listener bound (useful when configured as 0). */
  metadataPort: number;
  /** Port the admin TCP listener bound, or null when it listens on its unix socket only (the default). */
  adminPort: number | null;
  /** The admin API's unix socket, or null. */
  adminSocket: string | null;
  /** Stops accepting, lets in-flight requests finish, closes KV. */
  shutdown(): Promise<void>;
  /** Resolves when the service has stopped. */
  finished: Promise<void>;
  /** The dnsmasq integration (records, and the process when managed), or null when disabled. */
  dnsmasq: DnsmasqHandle | null;
  /** Boot tracking. */
  access: AccessRecorder;
  /** Every instance's boots. */
  boots: BootJournal;
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
  /** Keep dnsmasq's files (and, with `manage = child`, the process); default true. */
  dnsmasq?: boolean;
  /** Aborts a start still waiting for the metadata address. */
  signal?: AbortSignal;
  /** Reads an environment variable (CREDENTIALS_DIRECTORY); default: the permitted environment. */
  env?: (name: string) => string | undefined;
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
  const boots = startBootTracking(kv, config, { log, store, metrics, contention });
  registerGauges(metrics, store, access, () => dnsmasq?.restarts ?? 0);
  // Filled in once the metadata listener has its port.
  const extras: TemplateExtras = {};
  const servers: Deno.HttpServer[] = [];
  let metadata: GuestServer | null = null;
  // The handlers read these objects on every request: a reload replaces their configuration and renderer.
  // /health reports a dnsmasq mdserver runs itself (manage = child); the unit's is systemd's to watch.
  const dnsmasqState = dnsmasq === null ? null : {
    get managed() {
      return dnsmasq.manage === "child";
    },
    get pid() {
      return dnsmasq.pid;
    },
    get restarts() {
      return dnsmasq.restarts;
    },
  };
  const metadataDeps: MetadataDeps = { config, store, renderer, log, access, boots, metrics, extras };
  const adminDeps: AdminDeps = { config, store, log, renderer, access, boots, metrics, extras, dnsmasq: dnsmasqState };
  const metadataHandler = createMetadataHandler(metadataDeps);
  const adminHandler = createAdminHandler(adminDeps);
  const gate = new RequestGate();
  const quiet = () => {};
  // The admin listeners' requests go through the gate, so a shutdown drains them.
  const gated =
    <Info>(handler: (request: Request, info: Info) => Promise<Response>) => (request: Request, info: Info) =>
      gate.run(() => handler(request, info));
  let metadataPort = 0;
  let adminPort: number | null = null;
  try {
    // The TCP listener only with its token; requests over the socket need none.
    const { listenAddress: adminAddress, socket } = config.admin;
    const token = adminAddress === null
      ? null
      : await loadAdminToken(config.admin.tokenFile, options.env ?? permittedEnv);
    adminDeps.token = token;
    // The admin API first: ctl and the hook work while the metadata address is still missing.
    if (socket) {
      await prepareSocketPath(socket);
      const server = Deno.serve({ path: socket, onListen: quiet }, gated(adminHandler));
      servers.push(server);
      await restrictSocket(socket);
      log.info(`admin listening on unix:${socket}`);
    }
    if (adminAddress !== null) {
      const server = Deno.serve(
        { hostname: adminAddress, port: config.admin.port, onListen: quiet },
        gated(adminHandler),
      );
      servers.push(server);
      adminPort = server.addr.port;
      log.info(`admin listening on http://${adminAddress}:${adminPort}/ (token required)`);
    }

    // Guests get the bounded server: every connection limited in bytes, time and number (see [limits]).
    const { listenAddress, port } = config.mdserver;
    const { shutdownTimeoutMs: _, ...limits } = config.limits;
    metadata = await listenWhenAvailable(
      `${listenAddress}:${port}`,
      "metadata",
      () =>
        serveGuests({
          hostname: listenAddress,
          port,
          limits,
          onRefusals: (report) => log.warning(formatRefusalReport(report)),
          onError: (error) => log.error(`metadata handler failed: ${error instanceof Error ? error.stack : error}`),
          // The host itself (md_server's /instance-upload callers) is not a guest.
          trusted: (address) => isLoopback(address) || address === listenAddress,
          trustedBodyBytes: MAX_BODY_BYTES,
        }, metadataHandler),
      { log, ...(options.signal ? { signal: options.signal } : {}) },
    );
    metadataPort = metadata.addr.port;
    Object.assign(extras, guestUrls(config, metadata.addr.port));
    log.info(`metadata listening on ${extras.metadataUrl}/`);
  } catch (error) {
    // A listener that cannot bind (address in use, not configured on any
    // interface…) stops the start: undo what was started.
    await Promise.all([...servers.map((server) => server.shutdown()), metadata?.shutdown({ deadlineMs: 0 })]);
    await dnsmasq?.stop();
    if (!options.kv) kv.close();
    throw error;
  }

  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      // Within shutdown_timeout whatever clients do: the guest server closes
      // every connection at its deadline; the admin listeners' requests are
      // drained first (Deno's server.shutdown() cuts off request bodies still
      // arriving; new ones meanwhile get a 503), and their shutdown is not
      // waited for past the deadline.
      const deadlineMs = config.limits.shutdownTimeoutMs;
      const deadline = Date.now() + deadlineMs;
      // Long-polls and streams of boot changes end now, so draining does not wait for them.
      boots.close();
      await Promise.all([metadata?.shutdown({ deadlineMs }), gate.drain(deadlineMs)]);
      await Promise.race([
        Promise.all(servers.map((server) => server.shutdown())),
        sleep(Math.max(0, deadline - Date.now())),
      ]);
      await dnsmasq?.stop();
      await access.flush();
      await boots.flush();
      if (!options.kv) kv.close();
      log.info("stopped");
    })();
    return stopping;
  };
  const finished = Promise.all([...servers.map((server) => server.finished), metadata.finished]).then(() => {});
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
  return {
    store,
    metadataPort,
    adminPort,
    adminSocket: config.admin.socket,
    shutdown,
    finished,
    dnsmasq,
    access,
    boots,
    metrics,
    reload,
  };
}

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
