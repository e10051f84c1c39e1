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
import {
  createTemplateRenderer,
  type DocumentDeps,
  guestUrls,
  isLoopback,
  type TemplateExtras,
} from "../guest_api/mod.ts";
import {
  type AdminDeps,
  type ConfigDriveKeeper,
  createAdminHandler,
  createMetadataHandler,
  MAX_BODY_BYTES,
  type MetadataDeps,
  type ReloadOutcome,
  RequestGate,
} from "../http/mod.ts";
import { formatRefusalReport, type GuestServer, serveGuests } from "../http_server/mod.ts";
import { reloadableConfig } from "./reload.ts";
import { buildPool } from "../ipam/ipv4.ts";
import { BurstLog, type EventCounter } from "../log/burst_log.ts";
import type { Logger } from "../log/log.ts";
import { Metrics } from "../log/metrics.ts";
import {
  AccessRecorder,
  type BootJournal,
  DenoKvBackend,
  InstanceStore,
  isKv,
  type KeyValueBackend,
  openBackend,
  type StoreEvent,
} from "../store/mod.ts";
import { startBootTracking } from "./boot_tracking.ts";
import { prepareSocketPath, restrictSocket } from "./_admin_socket.ts";
import { loadAdminToken, permittedEnv } from "./_admin_token.ts";
import { listen, listenWhenAvailable } from "./_listen.ts";
import { registerMetrics } from "./_service_metrics.ts";
import { StateTally } from "./state_tally.ts";

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
  /** An opened backend to use instead of the configured one (kept open at shutdown). */
  backend?: KeyValueBackend;
  /** Called for every store change, after the built-in listeners. */
  onChange?: (event: StoreEvent) => void | Promise<void>;
  /** How long the store trusts a record it read, ms (tests shorten it); default ADDRESS_CACHE_TTL_MS. */
  addressCacheTtlMs?: number;
  /** Keep dnsmasq's files (and, with `manage = child`, the process); default true. */
  dnsmasq?: boolean;
  /** Aborts a start still waiting for the metadata address. */
  signal?: AbortSignal;
  /** Reads the configuration again and applies it (POST /v1/reload); absent: the API cannot reload. */
  reload?: () => Promise<ReloadOutcome>;
  /** Reads an environment variable (CREDENTIALS_DIRECTORY); default: the permitted environment. */
  env?: (name: string) => string | undefined;
  /**
   * Makes the config drive keeper (src/seed's ConfigDriveImages); absent:
   * no images are kept. It renders with what the admin API renders with.
   */
  configDrives?: (deps: { store: InstanceStore; log: Logger; documents: () => DocumentDeps }) => ConfigDriveService;
}

/** The config drive keeper as the service uses it: per upload and deletion, at start and on a reload. */
export interface ConfigDriveService extends ConfigDriveKeeper {
  /** Removes images no domain asks for; returns how many. */
  sweep(): Promise<number>;
  /** Rebuilds every image. */
  refreshAll(): Promise<unknown[]>;
}

/** Builds the instance store of a configuration over an open KV or backend. */
export function createStore(
  kv: Deno.Kv | KeyValueBackend,
  config: Config,
  contention?: EventCounter,
  addressCacheTtlMs?: number,
): InstanceStore {
  const pool = buildPool({
    network: config.dnsmasq.network,
    gateway: config.dnsmasq.gateway,
    listenAddress: config.mdserver.listenAddress,
    poolStart: config.dnsmasq.poolStart,
    poolEnd: config.dnsmasq.poolEnd,
  });
  const onKv = isKv(kv) || kv.name === "kv";
  return new InstanceStore(kv, {
    pool,
    location: config.service.location,
    host: config.service.hostname,
    ...(onKv ? { spaceProbeDir: dirname(config.mdserver.kvFile) } : {}),
    ...(contention ? { contention } : {}),
    ...(addressCacheTtlMs === undefined ? {} : { addressCacheTtlMs }),
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
  const ownBackend = !options.kv && !options.backend;
  const backend = options.backend ?? (options.kv ? new DenoKvBackend(options.kv) : await openBackend(config));
  const following = new AbortController();
  const closeBackend = () => {
    following.abort();
    if (ownBackend) backend.close();
  };
  // One line per burst of store contention, for uploads and boot tracking alike.
  const contention = new BurstLog(log, {
    what: "store busy",
    intervalMs: config.mdserver.storeBusyLogInterval * 1000,
  });
  const store = createStore(backend, config, contention, options.addressCacheTtlMs);
  // Started behind the listeners (its records are rebuilt from the whole store).
  let dnsmasq: DnsmasqHandle | null = null;
  if (options.onChange) store.subscribe(options.onChange);
  const renderer = createTemplateRenderer(config, log);

  // The boot-state counts for /metrics, kept up to date as state changes (a scrape is O(1)).
  const tally = new StateTally();
  store.subscribe((event) => {
    if (event.type === "delete") tally.remove(event.instance.uuid);
    else tally.setInstance(event.instance);
  });
  const access = new AccessRecorder(backend, {
    log,
    contention,
    onWrite: (uuid, record) => tally.setAccess(uuid, record),
  });
  // An upload of a known domain is a new start (the hook uploads on
  // `prepare begin`): its boot progress starts again, its host keys stay.
  store.subscribe(async (event) => {
    if (event.type === "upsert" && event.previous !== null && !event.takenBack && !event.remote && !event.upload) {
      await access.resetBoot(event.instance.uuid);
    }
  });
  const metrics = new Metrics();
  const boots = startBootTracking(backend, config, { log, store, metrics, contention });
  registerMetrics(metrics, { store, tally, version: config.service.version, restarts: () => dnsmasq?.restarts ?? 0 });
  // Filled in once the metadata listener has its port.
  const extras: TemplateExtras = {};
  const servers: Deno.HttpServer[] = [];
  let metadata: GuestServer | null = null;
  // The handlers read these objects on every request: a reload replaces their configuration and renderer.
  // /health reports a dnsmasq mdserver runs itself (manage = child); the unit's is systemd's to watch.
  const dnsmasqState = options.dnsmasq === false ? null : {
    get managed() {
      return dnsmasq?.manage === "child";
    },
    get pid() {
      return dnsmasq?.pid ?? null;
    },
    get restarts() {
      return dnsmasq?.restarts ?? 0;
    },
  };
  const metadataDeps: MetadataDeps = { config, store, renderer, log, access, boots, metrics, extras };
  const adminDeps: AdminDeps = {
    config,
    store,
    log,
    renderer,
    access,
    boots,
    metrics,
    extras,
    dnsmasq: dnsmasqState,
    ...(options.reload ? { reload: options.reload } : {}),
  };
  const configDrives = options.configDrives?.({
    store,
    log,
    documents: () => ({ config: adminDeps.config, renderer: adminDeps.renderer, log, extras }),
  }) ?? null;
  if (configDrives !== null) {
    metadataDeps.configDrives = adminDeps.configDrives = configDrives;
    // Deleted by the admin API or gc through it: the image goes with the record.
    store.subscribe(async (event) => {
      if (event.type === "delete") await configDrives.remove(event.instance.uuid);
    });
    await configDrives.sweep().catch((error) => log.warning(`config drive: sweep failed: ${error}`));
  }
  const metadataHandler = createMetadataHandler(metadataDeps);
  // A start's upload comes seconds before its guest's first request: its answers are prepared then.
  metadataDeps.onStartUploaded = adminDeps.onStartUploaded = (instance) =>
    void metadataHandler.ahead.prepareAhead(instance);
  metrics.gauge(
    "mdserver_answers_ahead",
    "Guest requests answered from answers prepared ahead (served), guests with answers kept (guests), " +
      "guests prepared at their start's upload (uploads).",
    () =>
      Promise.resolve([
        [{ kind: "served" }, metadataHandler.ahead.served],
        [{ kind: "guests" }, metadataHandler.ahead.guests],
        [{ kind: "uploads" }, metadataHandler.ahead.preparedAhead],
      ]),
  );
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
      const server = listen(
        "the admin listener",
        "admin",
        adminAddress,
        config.admin.port,
        () => Deno.serve({ hostname: adminAddress, port: config.admin.port, onListen: quiet }, gated(adminHandler)),
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
        listen("the metadata listener", "mdserver", listenAddress, port, () =>
          serveGuests({
            hostname: listenAddress,
            port,
            limits,
            onRefusals: (report) => log.warning(formatRefusalReport(report)),
            onError: (error) => log.error(`metadata handler failed: ${error instanceof Error ? error.stack : error}`),
            // The host itself (md_server's /instance-upload callers) is not a guest.
            trusted: (address) => isLoopback(address) || address === listenAddress,
            trustedBodyBytes: MAX_BODY_BYTES,
            // Guests' answers prepared ahead are written without a Request (src/http/answer_ahead.ts).
            answerAhead: (request, source) => metadataHandler.ahead.answer(request, source),
          }, metadataHandler), true),
      { log, ...(options.signal ? { signal: options.signal } : {}) },
    );
    metadataPort = metadata.addr.port;
    Object.assign(extras, guestUrls(config, metadata.addr.port));
    log.info(`metadata listening on ${extras.metadataUrl}/`);
  } catch (error) {
    // A listener that cannot bind (address in use, not configured on any
    // interface…) stops the start: undo what was started.
    await Promise.all([...servers.map((server) => server.shutdown()), metadata?.shutdown({ deadlineMs: 0 })]);
    closeBackend();
    throw error;
  }

  // Behind the listeners (guests already known are served from KV meanwhile):
  // dnsmasq's records rebuilt from the store, and the process started.
  // On etcd, the fleet's instances are held by watch first: guests are served from them, and
  // other hosts' changes after dnsmasq's rebuild reach it as events.
  try {
    await store.follow(following.signal, (error) => log.warning(`store: watch lost, retrying: ${error}`));
    if (options.dnsmasq !== false) dnsmasq = await startDnsmasq(config, { store, log });
  } catch (error) {
    await Promise.all([...servers.map((server) => server.shutdown()), metadata.shutdown({ deadlineMs: 0 })]);
    await dnsmasq?.stop();
    closeBackend();
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
      await counting;
      await Promise.race([
        Promise.all(servers.map((server) => server.shutdown())),
        sleep(Math.max(0, deadline - Date.now())),
      ]);
      await dnsmasq?.stop();
      await access.flush();
      await boots.flush();
      closeBackend();
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
    // Templates, keys and template data reach every image now, not only at the next start.
    if (configDrives !== null) {
      void configDrives.refreshAll().catch((error) => log.warning(`config drive: rebuild failed: ${error}`));
    }
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

export { listen };
