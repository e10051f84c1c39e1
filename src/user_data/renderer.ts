/**
 * The user-data (and vendor-data) renderer: finds a guest's template in
 * `userdata_dir` the way md_server did (_lookup.ts), runs it through Eta
 * with md_server's Bottle forms translated (_engine.ts, _bottle.ts), checks
 * cloud-config as cloud-init will read it (cloud_config.ts), and joins a
 * directory of parts into MIME multipart (multipart.ts).
 *
 * Template dialect, decided here and relied on by operators:
 * - Templates are Eta run with `useWith`, so `<%= hostname %>` and
 *   `<%= it.hostname %>` both work. Nothing is HTML-escaped. Templates are
 *   code: they run with the server's permissions, so only the operator may
 *   write them.
 * - md_server's Bottle forms `{{expr}}`, `{{ expr }}` and `{{!expr}}` become
 *   `<%= expr %>` wherever they appear outside an Eta tag. The expression
 *   is JavaScript: `public_keys['default']` works, and Python's `and`, `or`,
 *   `not`, `None`, `True`, `False` are mapped, but Python-only syntax
 *   (`a if c else b`, `.items()`) is not. Write a literal `{{` as
 *   `<%= "{{" %>`.
 * - Bottle control lines `% if x:`, `% elif x:`, `% else:`, `% for x in y:`
 *   and `% end` work (with Python truthiness, and Bottle's `defined(name)`
 *   and `get(name, default)`); any other Python line (`% include`,
 *   `% import`, `<% %>` Python blocks…) is not supported and fails loudly.
 * - A template whose first line is `## template: jinja` is left to
 *   cloud-init's Jinja: its `{{ }}` and `%` lines are passed through.
 * - A `<%` with no `%>` anywhere after it is literal text, so md_server
 *   templates that contain one render unchanged.
 * - Output tags never eat the newline after them (unlike Eta's default); a
 *   `<% %>` code tag alone on its line removes the whole line.
 * - An expression that yields `undefined` is an error, `null` renders as
 *   the empty string (as Bottle rendered `None`), arrays and objects as JSON.
 * - Helpers: `defined(name)`, `get(name, fallback)`, `yaml(value)` (a YAML
 *   flow scalar, quoted and escaped); a data key of the same name wins.
 *
 * @module
 */

import { compileTemplate, runTemplate, TemplateEngine, type TemplateFunction } from "./_engine.ts";
import {
  type DirListing,
  findUserData,
  type Found,
  listUserdataDir,
  SETTLE_MS,
  type TemplateSource,
  type UserDataTarget,
} from "./_lookup.ts";
import { BUILTIN_USER_DATA } from "./builtin.ts";
import { withBootEvents } from "./boot_events.ts";
import { checkCloudConfig, type CloudConfigKind, cloudConfigKind, type YamlWarning } from "./cloud_config.ts";
import { TemplateError, TemplateNotFoundError } from "./errors.ts";
import { withQuietEnv } from "./_quiet_env.ts";
import { assembleMultipart, isEmptyCloudConfig, listParts, type Part, partOf } from "./multipart.ts";

/** The rendered document and where it came from. */
export interface RenderedTemplate {
  /** The document served to the guest. */
  body: string;
  /** Path of the template (file or directory) used, or `"built-in"`. */
  template: string;
  /** `text/plain; charset=utf-8`, or `multipart/mixed; boundary=…`. */
  contentType: string;
}

/** Told of a document cloud-init accepts with a warning (a duplicate key), once per template version. */
export type TemplateWarningListener = (file: string, warning: YamlWarning) => void;

/** How a TemplateRenderer is built. */
export interface TemplateRendererOptions {
  /** Used when nothing matches and there is no default_template (default: BUILTIN_USER_DATA). */
  builtinTemplate?: string;
  /** userdata_dir's listing is kept only once the directory has not changed for this long (ms; default 2 s, keep it over 1 s). */
  settleMs?: number;
  /** Told of each warning once per template version (duplicate keys). */
  onWarning?: TemplateWarningListener;
}

interface CacheEntry {
  mtime: number | null;
  size: number;
  ino: number | null;
  fn: TemplateFunction;
}

const TEXT_TYPE = "text/plain; charset=utf-8";

/** Checked documents remembered: about one boot storm's worth. */
const CHECKED_KEPT = 1024;
/** Longer documents are checked every time (the memory kept stays under 16 MiB). */
const CHECKED_MAX_LENGTH = 16 * 1024;

/** Renders templates, compiling each file once and recompiling when its mtime, size or inode changes. */
export class TemplateRenderer {
  #source: TemplateSource;
  #engine = new TemplateEngine();
  #cache = new Map<string, CacheEntry>();
  #builtin: TemplateFunction;
  #listing: DirListing | null = null;
  #settleMs: number;
  #onWarning: TemplateWarningListener;
  /** Rendered documents that passed the check, oldest first, with their warnings (see #check). */
  #checked = new Map<string, YamlWarning[]>();
  /** What userDataSignature found for a target, and in which listing of userdata_dir. */
  #foundFor = new WeakMap<UserDataTarget, { listing: DirListing; found: Found }>();
  /** Warnings already told, per compiled template: a new version of a file is told again. */
  #told = new WeakMap<TemplateFunction, Set<string>>();

  /** Compiles the built-in template (or `options.builtinTemplate`) once, up front. */
  constructor(source: TemplateSource, options: TemplateRendererOptions = {}) {
    this.#source = source;
    this.#settleMs = options.settleMs ?? SETTLE_MS;
    this.#onWarning = options.onWarning ?? (() => {});
    this.#builtin = compileTemplate(this.#engine, options.builtinTemplate ?? BUILTIN_USER_DATA, "built-in");
  }

  /** Finds the template for target, renders it with data; directories become MIME multipart. */
  async renderUserData(target: UserDataTarget, data: Record<string, unknown>): Promise<RenderedTemplate> {
    const found = findUserData(this.#source, target, this.#userdataListing());
    if (found === null) {
      const body = runTemplate(this.#engine, this.#builtin, data, "built-in");
      this.#check(body, "built-in", this.#builtin);
      // With [events] on, the boot-events hook joins it (the guest may have no vendor-data: EC2).
      const endpoint = data.boot_events_url;
      if (typeof endpoint !== "string") return { body, template: "built-in", contentType: TEXT_TYPE };
      const joined = withBootEvents(body, endpoint);
      const boundary = /boundary="([^"]+)"/.exec(joined)![1];
      return { body: joined, template: "built-in", contentType: `multipart/mixed; boundary=${boundary}` };
    }
    return await this.#render(found, data);
  }

  /**
   * Whether the target has user-data, without rendering it: false only when
   * its userdata_prefix names no template (md_server's 404); any other guest
   * falls back to default_template or the built-in one.
   */
  hasUserData(target: UserDataTarget): boolean {
    try {
      findUserData(this.#source, target, this.#userdataListing());
      return true;
    } catch (error) {
      if (error instanceof TemplateNotFoundError) return false;
      throw error;
    }
  }

  /**
   * What target's user-data is made from, as a string that changes whenever
   * a file its render reads may have changed: userdata_dir's stat and the
   * template file's (device, inode, mtime, ctime, size). Null when no such
   * string can be given from two stats: a directory of parts, a folder or
   * file changed within the settle time (coarse timestamps could hide a
   * second change), a userdata_prefix naming no template. A caller that
   * keeps a render keeps it while this string stays the same; take it
   * before rendering, so a change during the render shows as a change.
   */
  userDataSignature(target: UserDataTarget): string | null {
    const { listing, keep } = listUserdataDir(this.#source.userdataDir, this.#listing, this.#settleMs);
    this.#listing = keep ? listing : null;
    if (listing !== null && !keep) return null;
    const folder = listing?.signature ?? "-";
    let found: Found | null;
    let info: Deno.FileInfo;
    try {
      // While the folder's listing is the same, the lookup finds the same path: only its stat is taken again.
      const known = listing === null ? undefined : this.#foundFor.get(target);
      if (known !== undefined && known.listing === listing) {
        found = known.found;
        info = Deno.statSync(found.path);
      } else {
        found = findUserData(this.#source, target, listing);
        if (found === null) return `${folder}|built-in`;
        info = found.info ?? Deno.statSync(found.path);
        if (listing !== null) this.#foundFor.set(target, { listing, found });
      }
    } catch {
      return null;
    }
    if (!info.isFile) return null;
    const mtime = info.mtime?.getTime() ?? 0;
    const ctime = info.ctime?.getTime() ?? mtime;
    if (Date.now() - Math.max(mtime, ctime) <= this.#settleMs) return null;
    return `${folder}|${found.path}|${info.dev}:${info.ino}:${mtime}:${ctime}:${info.size}`;
  }

  /** Renders one template file (or directory of parts) with data — used for vendor-data. */
  async renderPath(path: string, data: Record<string, unknown>): Promise<RenderedTemplate> {
    let root: string;
    try {
      root = await Deno.realPath(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new TemplateNotFoundError(`Cannot find template "${path}"`);
      }
      throw error;
    }
    return await this.#render({ path, root }, data);
  }

  #userdataListing(): DirListing | null {
    const { listing, keep } = listUserdataDir(this.#source.userdataDir, this.#listing, this.#settleMs);
    this.#listing = keep ? listing : null;
    return listing;
  }

  /**
   * Checks a rendered document that is cloud-config (by its start, or
   * `kind` for a part that must be) with checkCloudConfig, remembering the
   * last CHECKED_KEPT documents that passed: the check depends on the text
   * alone, and a guest that asks again (every boot, every retry) mostly gets
   * the very same text, which then costs a lookup instead of a YAML parse.
   * Whatever fails is never remembered. Warnings go to onWarning once per
   * version of the template that made them.
   */
  #check(body: string, file: string, fn: TemplateFunction, kind: CloudConfigKind | null = cloudConfigKind(body)): void {
    if (kind === null) return; // not YAML config: nothing to check
    let warnings = this.#checked.get(body);
    if (warnings !== undefined) {
      this.#checked.delete(body);
    } else {
      // Synchronous: run with an empty process.env, which the yaml package reads for every token (_quiet_env.ts).
      warnings = withQuietEnv(() => checkCloudConfig(body, file, kind));
    }
    if (body.length <= CHECKED_MAX_LENGTH) {
      this.#checked.set(body, warnings);
      if (this.#checked.size > CHECKED_KEPT) this.#checked.delete(this.#checked.keys().next().value!);
    }
    if (warnings.length === 0) return;
    let told = this.#told.get(fn);
    if (told === undefined) this.#told.set(fn, told = new Set());
    for (const warning of warnings) {
      if (told.has(warning.message)) continue;
      told.add(warning.message);
      this.#onWarning(file, warning);
    }
  }

  async #render(found: Found, data: Record<string, unknown>): Promise<RenderedTemplate> {
    const info = found.info ?? Deno.statSync(found.path);
    if (!info.isDirectory) {
      const fn = await this.#compiled(found.path, info);
      const body = runTemplate(this.#engine, fn, data, found.path);
      this.#check(body, found.path, fn);
      return { body, template: found.path, contentType: TEXT_TYPE };
    }
    const parts: Part[] = [];
    const empty: Part[] = [];
    for (const file of await listParts(found.path, found.root)) {
      const fn = await this.#compiled(file.path);
      const part = partOf(file, runTemplate(this.#engine, fn, data, file.path));
      if (part.type === "text/cloud-config") this.#check(part.body, file.path, fn, part.type);
      // An empty cloud-config part makes current cloud-init's boot "degraded": left out.
      if (isEmptyCloudConfig(part)) empty.push(part);
      else parts.push(part);
    }
    if (parts.length === 0 && empty.length > 0) parts.push(empty[0]!);
    if (parts.length === 0) {
      throw new TemplateError(`Cannot render template "${found.path}": the directory has no parts`, {
        file: found.path,
        line: null,
      });
    }
    const { body, boundary } = assembleMultipart(parts);
    return { body, template: found.path, contentType: `multipart/mixed; boundary=${boundary}` };
  }

  /** The compiled template for path, from the cache while its stat (info, if just taken) is unchanged. */
  async #compiled(path: string, info = Deno.statSync(path)): Promise<TemplateFunction> {
    // Stat before reading: a write in between leaves a stale stat, which
    // only causes one extra compile next time, never stale output.
    const mtime = info.mtime?.getTime() ?? null;
    const hit = this.#cache.get(path);
    if (hit && hit.mtime === mtime && hit.size === info.size && hit.ino === info.ino) return hit.fn;
    const fn = compileTemplate(this.#engine, await Deno.readTextFile(path), path);
    this.#cache.set(path, { mtime, size: info.size, ino: info.ino, fn });
    return fn;
  }
}
