/**
 * Config drives kept by the service: for every domain whose XML names
 * `[configdrive] dir`/<its uuid>.iso as a CD-ROM, an ISO 9660 image
 * labelled `config-2` with the OpenStack and CloudStack layouts
 * (configDriveFiles), built when the domain is uploaded (the hook's
 * `prepare begin`, before QEMU opens the file), rebuilt when what it holds
 * changes (every upload, a reload, a new password, a stop) and removed with
 * the domain. See docs/configdrive.md.
 *
 * Every image is written beside its final name and renamed over it, so
 * QEMU opens either the old image or the new one, whole. A failed build
 * fails open: the upload still succeeds, the stale image is removed (so
 * no revoked key or old password stays on it) and the reason is logged and
 * returned, for the hook to print. Images are bounded in number
 * (`max_images`) and in bytes of files (`max_size`).
 *
 * @module
 */

import { join } from "node:path";
import type { Config } from "../config/config.ts";
import { configDriveFiles, type DocumentDeps } from "../guest_api/mod.ts";
import type { Logger } from "../log/log.ts";
import { configDrivePath, type Instance, type InstanceStore } from "../store/mod.ts";
import { findIsoTool, type IsoTool, writeIsoImage } from "./seed_iso.ts";

/** What became of one instance's image. */
export type ConfigDriveOutcome =
  | { state: "built"; path: string; files: number; bytes: number; ms: number; password: boolean }
  | { state: "removed" | "none"; path: string }
  | { state: "failed"; path: string; reason: string };

/** What the keeper needs. */
export interface ConfigDriveDeps {
  /** The store: the records, and the password's clear text to forget once it is in an image. */
  store: InstanceStore;
  /** Where builds and failures are logged. */
  log: Logger;
  /** The rendering dependencies of the next build, read for each one (a reload replaces them). */
  documents: () => DocumentDeps;
  /** The tools tried, in order; default genisoimage alone (xorriso can launch other programs). */
  tools?: readonly IsoTool[];
}

const IMAGE_RE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.iso$/;
/**
 * The one tool the service runs: genisoimage writes an image and nothing
 * else, where xorriso can launch other programs (`-launch_frontend`).
 */
export const SERVICE_ISO_TOOLS: readonly IsoTool[] = ["genisoimage"];
/** Names the keeper writes before renaming: stale ones are swept. */
const PARTIAL_PREFIX = ".partial-";

/** Whether a file exists. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Removes a file; true when there was one. */
async function removeFile(path: string): Promise<boolean> {
  try {
    await Deno.remove(path, { recursive: true });
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Builds, rebuilds and removes the config drives of the instances that ask for one. */
export class ConfigDriveImages {
  readonly #deps: ConfigDriveDeps;
  #tool: Promise<IsoTool> | null = null;
  /** New images being built now. */
  #adding = 0;
  /** One build at a time per instance, in the order asked, so the last one asked is the one left. */
  readonly #queues = new Map<string, Promise<unknown>>();

  /** A keeper over the store and rendering of deps. */
  constructor(deps: ConfigDriveDeps) {
    this.#deps = deps;
  }

  get #config(): Config {
    return this.#deps.documents().config;
  }

  /** The image file of the instance with uuid. */
  path(uuid: string): string {
    return configDrivePath(this.#config, uuid);
  }

  /** Runs work after the instance's earlier builds. */
  #serial<T>(uuid: string, work: () => Promise<T>): Promise<T> {
    const result = (this.#queues.get(uuid) ?? Promise.resolve()).then(work);
    const settled = result.catch(() => {});
    this.#queues.set(uuid, settled);
    void settled.then(() => {
      if (this.#queues.get(uuid) === settled) this.#queues.delete(uuid);
    });
    return result;
  }

  /**
   * Brings the instance's image up to date: built when it asks for one,
   * removed when it no longer does. A password waiting to be delivered goes
   * into the image; with `deliver` (the build for a start, which QEMU opens
   * next) it then counts as delivered and the record keeps only its hash.
   * Never throws: a failure is logged and returned.
   */
  refresh(instance: Pick<Instance, "uuid" | "name">, options: { deliver?: boolean } = {}): Promise<ConfigDriveOutcome> {
    return this.#serial(instance.uuid, async () => {
      const path = this.path(instance.uuid);
      try {
        // The record as it is now: a build queued behind another sees what changed meanwhile.
        const current = await this.#deps.store.getByUuid(instance.uuid);
        if (!current?.configDrive) return { state: await removeFile(path) ? "removed" : "none", path };
        return await this.#build(current, path, options.deliver === true);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        // Fail open, but never leave an image that no longer says what mdserver knows.
        const stale = await removeFile(path).catch(() => false);
        this.#deps.log.warning(
          `config drive: ${instance.name}: not built: ${reason}${stale ? " (its previous image removed)" : ""}`,
        );
        return { state: "failed", path, reason };
      }
    });
  }

  async #build(instance: Instance, path: string, deliver: boolean): Promise<ConfigDriveOutcome> {
    const started = performance.now();
    const config = this.#config;
    const { dir, label, maxImages, maxBytes } = config.configDrive;
    if (!await exists(dir)) {
      await Deno.mkdir(dir, { recursive: true });
      // QEMU's user, given each image by the hook, passes through without listing; the umask would take o+x away.
      await Deno.chmod(dir, 0o751);
    }
    // New images being built count too, so concurrent uploads of new domains cannot pass the bound together.
    const adding = !await exists(path);
    if (adding && await this.count() + this.#adding >= maxImages) {
      throw new RangeError(`[configdrive] max_images = ${maxImages} images exist already`);
    }
    if (adding) this.#adding++;
    try {
      return await this.#write(instance, { path, label, maxBytes, dir, deliver, started });
    } finally {
      if (adding) this.#adding--;
    }
  }

  async #write(
    instance: Instance,
    options: { path: string; label: string; maxBytes: number; dir: string; deliver: boolean; started: number },
  ): Promise<ConfigDriveOutcome> {
    const { path, label, maxBytes, dir, deliver, started } = options;
    const files = await configDriveFiles(this.#deps.documents(), instance);
    let bytes = 0;
    for (const text of files.values()) bytes += new TextEncoder().encode(text).byteLength;
    if (bytes > maxBytes) {
      throw new RangeError(`its files are ${bytes} bytes, over [configdrive] max_size = ${maxBytes}`);
    }
    this.#tool ??= findIsoTool(this.#deps.tools ?? SERVICE_ISO_TOOLS);
    const tool = await this.#tool.catch((error) => {
      this.#tool = null;
      throw error;
    });
    const partial = join(dir, `${PARTIAL_PREFIX}${instance.uuid}-${crypto.randomUUID()}`);
    await Deno.mkdir(partial, { mode: 0o700 });
    try {
      const output = join(partial, "image.iso");
      await writeIsoImage(files, { label, output, tool, workDir: partial });
      await Deno.chmod(output, 0o640);
      await Deno.rename(output, path);
    } finally {
      await removeFile(partial);
    }
    // In the image this start opens: the clear text has been delivered, only the hash stays.
    const password = files.has("cloudstack/password/vm_password.txt");
    if (password && deliver) await this.#deps.store.takeClearPassword(instance.uuid, instance.password!.hash);
    const ms = Math.round(performance.now() - started);
    this.#deps.log.info(
      `config drive: ${instance.name}: ${path} built, ${files.size} files, ${bytes} bytes` +
        `${password ? (deliver ? ", with its password (delivered)" : ", with its password") : ""}, ${ms} ms`,
    );
    return { state: "built", path, files: files.size, bytes, ms, password };
  }

  /** Removes the image of the instance with uuid, if any (the domain was deleted). Never throws. */
  remove(uuid: string): Promise<boolean> {
    return this.#serial(uuid, async () => {
      try {
        return await removeFile(this.path(uuid));
      } catch (error) {
        this.#deps.log.warning(`config drive: cannot remove ${this.path(uuid)}: ${(error as Error).message}`);
        return false;
      }
    });
  }

  /** How many images the folder holds. */
  async count(): Promise<number> {
    let count = 0;
    try {
      for await (const entry of Deno.readDir(this.#config.configDrive.dir)) {
        if (entry.isFile && IMAGE_RE.test(entry.name)) count++;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return count;
  }

  /**
   * Removes the images of domains the store no longer knows (deleted while
   * the service was down, e.g. by an offline gc) and partial writes left by
   * a crash; returns how many files went.
   */
  async sweep(): Promise<number> {
    const found: { name: string; uuid: string | null }[] = [];
    try {
      for await (const entry of Deno.readDir(this.#config.configDrive.dir)) {
        const uuid = IMAGE_RE.exec(entry.name)?.[1] ?? null;
        if (uuid !== null || entry.name.startsWith(PARTIAL_PREFIX)) found.push({ name: entry.name, uuid });
      }
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return 0;
      throw error;
    }
    let removed = 0;
    for (const { name, uuid } of found) {
      const orphan = uuid === null || (await this.#deps.store.getByUuid(uuid))?.configDrive !== true;
      if (orphan && await this.#serial(uuid ?? name, () => removeFile(join(this.#config.configDrive.dir, name)))) {
        removed++;
      }
    }
    if (removed > 0) {
      this.#deps.log.info(`config drive: removed ${removed} images and partial files no domain asks for`);
    }
    return removed;
  }

  /** Rebuilds every image (after a reload: templates, keys, template data); returns the outcomes. */
  async refreshAll(): Promise<ConfigDriveOutcome[]> {
    const outcomes: ConfigDriveOutcome[] = [];
    for await (const instance of this.#deps.store.list()) {
      if (instance.configDrive) outcomes.push(await this.refresh(instance));
    }
    return outcomes;
  }
}
