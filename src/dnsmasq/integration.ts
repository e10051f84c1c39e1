/**
 * dnsmasq beside the running service: at start the configuration is
 * written and every host record rebuilt from the store; then each store
 * change rewrites its records and, when dnsmasq must notice, reloads it
 * (SIGHUP) or restarts it. With `manage = unit` dnsmasq is its own systemd
 * unit and mdserver asks for a restart by writing one file (the unit's
 * `.path` watches it): mdserver runs nothing and signals nothing. With
 * `manage = child` mdserver runs dnsmasq itself (see process.ts; for
 * development); with `no` it signals the dnsmasq named by the pid file.
 *
 * @module
 */

import type { Config, DnsmasqManage } from "../config/config.ts";
import { sleep } from "../io/sleep.ts";
import type { Logger } from "../log/log.ts";
import type { InstanceStore, StoreEvent } from "../store/store.ts";
import { RecordFilesFullError } from "./errors.ts";
import { isNoSpace } from "../io/no_space.ts";
import { type Backoff, DnsmasqSupervisor, signalPidFile } from "./process.ts";
import { applyStoreEvent, rebuildHostRecords, writeDnsmasqConfig } from "./records.ts";
import { type DnsmasqPaths, dnsmasqPaths } from "./render.ts";
import { type DnsmasqAction, ReloadScheduler } from "./_reload_scheduler.ts";

/** A running dnsmasq integration. */
export interface DnsmasqHandle {
  /** Where the generated files are. */
  readonly paths: DnsmasqPaths;
  /** Who runs dnsmasq: its systemd unit, mdserver (child), or someone else. */
  readonly manage: DnsmasqManage;
  /** Pid of the managed dnsmasq, or null (not managed, or between runs). */
  readonly pid: number | null;
  /** How often the managed dnsmasq was started again. */
  readonly restarts: number;
  /** Stops following the store and stops the managed dnsmasq. */
  stop(): Promise<void>;
}

/** Options of startDnsmasq. */
export interface StartDnsmasqOptions {
  /** Restart delays of the managed process. */
  backoff?: Partial<Backoff>;
  /** Shortest time between two SIGHUPs; more removals in between share one. Default 200 ms. */
  reloadIntervalMs?: number;
}

/**
 * Writes dnsmasq's configuration, rebuilds every host record from the store,
 * follows store changes, and — with `manage = child` — runs dnsmasq and keeps it
 * running; otherwise signals the dnsmasq named by the pid file.
 */
export async function startDnsmasq(
  config: Config,
  deps: { store: InstanceStore; log: Logger },
  options: StartDnsmasqOptions = {},
): Promise<DnsmasqHandle> {
  const integration = new DnsmasqIntegration(config, deps.log, options);
  await integration.start(deps.store);
  return integration;
}

/** Longest wait, in 100 ms steps, for a dnsmasq left running from before to exit. */
const LEFTOVER_EXIT_CHECKS = 50;

/** The integration's state: the files, the supervisor when managed, and the queue of store changes. */
class DnsmasqIntegration implements DnsmasqHandle {
  readonly paths: DnsmasqPaths;
  readonly manage: DnsmasqManage;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #options: StartDnsmasqOptions;
  readonly #scheduler: ReloadScheduler;
  #supervisor: DnsmasqSupervisor | null = null;
  #stopped = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(config: Config, log: Logger, options: StartDnsmasqOptions) {
    this.paths = dnsmasqPaths(config);
    this.manage = config.dnsmasq.manage;
    this.#config = config;
    this.#log = log;
    this.#options = options;
    this.#scheduler = new ReloadScheduler((action, reason) => this.#perform(action, reason), {
      intervalMs: options.reloadIntervalMs ?? 200,
      onError: (error) => log.error(`dnsmasq: ${(error as Error).message}`),
    });
  }

  get pid(): number | null {
    return this.#supervisor?.pid ?? null;
  }

  get restarts(): number {
    return this.#supervisor?.restarts ?? 0;
  }

  /** Writes the files, starts or signals dnsmasq, and subscribes to the store. */
  async start(store: InstanceStore): Promise<void> {
    const { paths } = this;
    const log = this.#log;
    const configChanged = await writeDnsmasqConfig(this.#config, paths);
    log.info(`dnsmasq: configuration ${paths.confFile}, options ${paths.optsFile}`);
    const { useDns, dnsPort } = this.#config.dnsmasq;
    if (useDns && dnsPort !== 53) {
      log.warning(`dnsmasq: use_dns is set but dns_port is ${dnsPort}; guests ask port 53`);
    }
    const started = performance.now();
    const summary = await rebuildHostRecords(this.#config, paths, store.list(), (done) => {
      log.info(
        `dnsmasq: rebuilding records: ${done} instances (${((performance.now() - started) / 1000).toFixed(1)}s)`,
      );
    });
    log.info(
      `dnsmasq: records of ${summary.instances} instances in ${paths.dhcpHostsDir} and ${paths.hostsDir} ` +
        `(${summary.written} written, ${summary.unchanged} unchanged, ${summary.removed} stale removed) ` +
        `in ${((performance.now() - started) / 1000).toFixed(1)}s`,
    );
    if (this.manage === "unit") {
      // Its unit starts it, or restarts it to read a changed configuration.
      await this.#requestUnitRestart("mdserver started");
    } else if (this.manage === "child") {
      await this.#stopLeftover();
      this.#supervisor = new DnsmasqSupervisor({
        binary: this.#config.dnsmasq.binary,
        confFile: paths.confFile,
        log,
        ...(this.#options.backoff ? { backoff: this.#options.backoff } : {}),
      });
      this.#supervisor.start();
    } else {
      if (configChanged) {
        log.warning(`dnsmasq: ${paths.confFile} changed; restart dnsmasq to use it (SIGHUP does not re-read it)`);
      }
      if (summary.dhcpChanged) await this.#signalExternal("records rebuilt at start");
    }
    store.subscribe((event) => this.#follow(event));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#queue;
    // A dnsmasq that outlives us (manage = no or unit) still needs the last reload.
    await this.#scheduler.stop({ flushPending: this.#supervisor === null });
    await this.#supervisor?.stop();
  }

  /** One change at a time, in order, so that a write and a removal of the same instance never interleave. */
  #follow(event: StoreEvent): Promise<void> | undefined {
    if (this.#stopped) return;
    const done = this.#queue.then(async () => {
      const change = await applyStoreEvent(this.#config, this.paths, event);
      this.#log.debug(
        `dnsmasq: records of ${event.instance.name} ${event.type === "delete" ? "removed" : "written"}`,
      );
      if (change.restart) await this.#scheduler.request("restart", change.restart);
      else if (change.reload) await this.#scheduler.request("reload", change.reload);
    });
    this.#queue = done.catch(() => {});
    return done.catch((error) => {
      this.#log.error(`dnsmasq: cannot update the records of ${event.instance.name}: ${(error as Error).message}`);
      // The store takes the change back and sends what holds again, which puts these files back.
      if (isNoSpace(error)) throw new RecordFilesFullError(event.instance.name, this.paths.baseDir, { cause: error });
      throw error;
    });
  }

  /** Both actions make dnsmasq read every DHCP record again. */
  async #perform(action: DnsmasqAction, reason: string): Promise<void> {
    // Its unit can only be restarted; with leasefile-ro that loses nothing.
    if (this.manage === "unit") return await this.#requestUnitRestart(reason);
    if (this.#supervisor) {
      if (action === "restart") await this.#supervisor.restart(reason);
      else this.#supervisor.reload(reason);
      return;
    }
    if (action === "restart") {
      this.#log.info(
        `dnsmasq: ${reason}; until a lease dnsmasq may still hold from before expires or dnsmasq is restarted, ` +
          `the old name resolves and the address is refused to another MAC (manage = no)`,
      );
    }
    await this.#signalExternal(reason);
  }

  /**
   * Writes the request file in place (a close after writing is what the
   * `.path` unit's PathChanged= sees); its text says when and why.
   */
  async #requestUnitRestart(reason: string): Promise<void> {
    const file = this.paths.restartRequestFile;
    await Deno.writeTextFile(file, `${new Date().toISOString()} ${reason}\n`, { mode: 0o640 });
    this.#log.info(`dnsmasq: restart of mdserver-dnsmasq.service requested through ${file}: ${reason}`);
  }

  /** A dnsmasq left behind by an mdserver that died would hold the ports. */
  async #stopLeftover(): Promise<void> {
    const { pidFile } = this.paths;
    if (!await signalPidFile(pidFile, "SIGTERM").catch(() => false)) return;
    this.#log.warning(`dnsmasq: stopped a dnsmasq left running (pid file ${pidFile})`);
    for (let i = 0; i < LEFTOVER_EXIT_CHECKS && await signalPidFile(pidFile, 0).catch(() => false); i++) {
      await sleep(100);
    }
  }

  /** SIGHUP to the dnsmasq of the pid file (manage = no). */
  async #signalExternal(reason: string): Promise<void> {
    const { pidFile } = this.paths;
    try {
      if (await signalPidFile(pidFile, "SIGHUP")) {
        this.#log.info(`dnsmasq (pid file ${pidFile}) reloaded with SIGHUP: ${reason}`);
      } else {
        this.#log.debug(`dnsmasq: no running dnsmasq in ${pidFile}; not signalled (${reason})`);
      }
    } catch (error) {
      this.#log.warning(`dnsmasq: cannot signal the pid in ${pidFile}: ${(error as Error).message}`);
    }
  }
}
