/**
 * User-data (and vendor-data) templates: lookup in `userdata_dir` the way
 * md_server did it, Eta rendering that also accepts md_server's Bottle
 * `{{ }}` form, `#cloud-config` validation, and MIME multipart assembly for
 * a directory of parts.
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

import { Eta } from "eta";
import { join, resolve } from "node:path";
import { parseDocument } from "yaml";
// @ts-types="@types/js-yaml"
import { load as fastYamlLoad } from "js-yaml";

/** Where user-data templates are looked up. */
export interface TemplateSource {
  /** md_server's `userdata_dir`. */
  userdataDir: string;
  /** md_server's `userdata_suffixes` split on ":", e.g. `["", ".yaml"]`. */
  suffixes: string[];
  /** md_server's `default_template` (absolute, or relative to `userdataDir`), or null. */
  defaultTemplate: string | null;
}

/** Who the user-data is for. */
export interface UserDataTarget {
  /** The domain's `<mdserver:userdata_prefix>` metadata, if any. */
  prefix: string | null;
  /** Domain name. */
  name: string;
  /** MAC on the managed network, lower case with colons. */
  mac: string;
}

/** The rendered document and where it came from. */
export interface RenderedTemplate {
  /** The document served to the guest. */
  body: string;
  /** Path of the template (file or directory) used, or `"built-in"`. */
  template: string;
  /** `text/plain; charset=utf-8`, or `multipart/mixed; boundary=…`. */
  contentType: string;
}

/** A template failed to compile or render; carries file and line for the log. */
export class TemplateError extends Error {
  /** Template file (or directory) that failed. */
  readonly file: string;
  /** Line in the template (or in the rendered document, for YAML errors), if known. */
  readonly line: number | null;

  /** Builds an error for `file` at `line`. */
  constructor(
    message: string,
    options: { file: string; line: number | null; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = "TemplateError";
    this.file = options.file;
    this.line = options.line;
  }
}

/** Thrown when the domain names a userdata_prefix that matches no file (md_server answered 404). */
export class TemplateNotFoundError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "TemplateNotFoundError";
  }
}

/** md_server's built-in template (hostname + default key), used when nothing matches and no default_template. */
export const BUILTIN_USER_DATA: string = `#cloud-config
hostname: <%= __mds.yaml(it.hostname) %>
fqdn: <%= __mds.yaml(it.fqdn || it.hostname + ".localdomain") %>
manage_etc_hosts: true
<% const keys = __mds.publicKeys(it.public_keys) %>
<% if (keys.length > 0) { %>
ssh_authorized_keys:
<%   for (const key of keys) { %>
  - <%= __mds.yaml(key) %>
<%   } %>
<% } %>
<% if (it.phone_home_url) { %>
phone_home:
  url: <%= __mds.yaml(it.phone_home_url) %>
  post: [pub_key_rsa, pub_key_ecdsa, pub_key_ed25519, instance_id, hostname, fqdn]
  tries: 5
<% } %>
`;

type TemplateFunction = ReturnType<Eta["compile"]>;

interface CacheEntry {
  mtime: number | null;
  size: number;
  ino: number | null;
  fn: TemplateFunction;
}

/** A file or directory found for a target, the tree its parts must stay in, and its stat if just taken. */
interface Found {
  path: string;
  root: string;
  info?: Deno.FileInfo;
}

/** userdata_dir as last read: its real path and entry names, valid while its stat is unchanged. */
interface DirListing {
  signature: string;
  real: string;
  names: Set<string>;
}

/**
 * A directory changed less than this long ago (ms) may change again without
 * a new mtime or ctime (file system timestamps are coarse; Deno gives ctime
 * in whole seconds), so its listing is not kept. More than a second, so that
 * any later change moves ctime even when its mtime is set back.
 */
const SETTLE_MS = 2_000;

/** Renders templates, compiling each file once and recompiling when its mtime or size changes. */
export class TemplateRenderer {
  #source: TemplateSource;
  #engine = new _Engine();
  #cache = new Map<string, CacheEntry>();
  #builtin: TemplateFunction;
  #listing: DirListing | null = null;
  #settleMs: number;
  /** Rendered documents that passed validation, oldest first (see #validate). */
  #validated = new Set<string>();

  /**
   * Compiles the built-in template (or `options.builtinTemplate`) once, up
   * front. `settleMs`: userdata_dir's listing is kept only once the directory
   * has not changed for this long (default 2 s; keep it over 1 s).
   */
  constructor(
    source: TemplateSource,
    options: { builtinTemplate?: string; settleMs?: number } = {},
  ) {
    this.#source = source;
    this.#settleMs = options.settleMs ?? SETTLE_MS;
    this.#builtin = _compile(
      this.#engine,
      options.builtinTemplate ?? BUILTIN_USER_DATA,
      "built-in",
    );
  }

  /** Finds the template for target, renders it with data; directories become MIME multipart. */
  async renderUserData(
    target: UserDataTarget,
    data: Record<string, unknown>,
  ): Promise<RenderedTemplate> {
    const found = _findUserData(this.#source, target, this.#userdataListing());
    if (found === null) {
      const body = _run(this.#engine, this.#builtin, data, "built-in");
      this.#validate(body, "built-in");
      return { body, template: "built-in", contentType: TEXT_TYPE };
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
      _findUserData(this.#source, target, this.#userdataListing());
      return true;
    } catch (error) {
      if (error instanceof TemplateNotFoundError) return false;
      throw error;
    }
  }

  /** Renders one template file (or directory of parts) with data — used for vendor-data. */
  async renderPath(
    path: string,
    data: Record<string, unknown>,
  ): Promise<RenderedTemplate> {
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

  /**
   * userdata_dir's entries, read again only when the directory changed, so
   * that looking up a guest's template costs one stat rather than one failed
   * file lookup per candidate name. null when the directory does not exist.
   */
  #userdataListing(): DirListing | null {
    const dir = this.#source.userdataDir;
    // Synchronous file system calls on the request path: a local stat takes
    // microseconds, a few times less than the thread hop of an async one.
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(dir);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    if (!info.isDirectory) return null;
    const mtime = info.mtime?.getTime() ?? 0;
    const ctime = info.ctime?.getTime() ?? mtime;
    const signature = `${info.dev}:${info.ino}:${mtime}:${ctime}`;
    if (this.#listing?.signature === signature) return this.#listing;
    const names = new Set<string>();
    for (const entry of Deno.readDirSync(dir)) names.add(entry.name);
    const listing = { signature, real: Deno.realPathSync(dir), names };
    // ctime moves on every change, even one whose mtime was set back.
    this.#listing = Date.now() - Math.max(mtime, ctime) > this.#settleMs ? listing : null;
    return listing;
  }

  /**
   * Checks a rendered document that is cloud-config (by its first line, or
   * `always` for a part that must be) with _validate, remembering the last
   * VALIDATED_KEPT documents that passed: the check depends on the text
   * alone, and a guest that asks again (every boot, every retry) mostly gets
   * the very same text, which then costs a lookup instead of a YAML parse.
   * Whatever fails is never remembered.
   */
  #validate(body: string, file: string, options: { always?: boolean } = {}): void {
    if (!options.always && !_isCloudConfig(body)) return; // nothing to check
    if (body.length > VALIDATED_MAX_LENGTH) return _validate(body, file);
    if (this.#validated.delete(body)) {
      this.#validated.add(body);
      return;
    }
    _validate(body, file);
    this.#validated.add(body);
    if (this.#validated.size > VALIDATED_KEPT) this.#validated.delete(this.#validated.values().next().value!);
  }

  async #render(
    found: Found,
    data: Record<string, unknown>,
  ): Promise<RenderedTemplate> {
    const info = found.info ?? Deno.statSync(found.path);
    if (!info.isDirectory) {
      const body = await this.#renderFile(found.path, data, info);
      this.#validate(body, found.path);
      return { body, template: found.path, contentType: TEXT_TYPE };
    }
    const parts: _Part[] = [];
    for (const file of await _listParts(found.path, found.root)) {
      const body = await this.#renderFile(file.path, data);
      const type = _partType(file.name, body);
      if (type === "text/cloud-config") {
        this.#validate(body, file.path, { always: true });
      }
      parts.push({ name: file.name, type, body });
    }
    if (parts.length === 0) {
      throw new TemplateError(
        `Cannot render template "${found.path}": the directory has no parts`,
        {
          file: found.path,
          line: null,
        },
      );
    }
    const { body, boundary } = _multipart(parts);
    return {
      body,
      template: found.path,
      contentType: `multipart/mixed; boundary=${boundary}`,
    };
  }

  async #renderFile(
    path: string,
    data: Record<string, unknown>,
    info?: Deno.FileInfo,
  ): Promise<string> {
    return _run(this.#engine, await this.#compiled(path, info), data, path);
  }

  /** The compiled template for path, from the cache while its stat (info, if just taken) is unchanged. */
  async #compiled(path: string, info = Deno.statSync(path)): Promise<TemplateFunction> {
    // Stat before reading: a write in between leaves a stale stat, which
    // only causes one extra compile next time, never stale output.
    const mtime = info.mtime?.getTime() ?? null;
    const hit = this.#cache.get(path);
    if (
      hit && hit.mtime === mtime && hit.size === info.size &&
      hit.ino === info.ino
    ) {
      return hit.fn;
    }
    const fn = _compile(this.#engine, await Deno.readTextFile(path), path);
    this.#cache.set(path, { mtime, size: info.size, ino: info.ino, fn });
    return fn;
  }
}

const TEXT_TYPE = "text/plain; charset=utf-8";

/** Validated documents remembered: about one boot storm's worth. */
const VALIDATED_KEPT = 1024;
/** Longer documents are validated every time (the memory kept stays under 16 MiB). */
const VALIDATED_MAX_LENGTH = 16 * 1024;

// ---------------------------------------------------------------- lookup

/** A name usable as a file name inside userdata_dir. */
function _isSafeName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") &&
    !name.includes("\0");
}

/** The real path of dir, or null when it does not exist. */
function _realDir(dir: string): string | null {
  try {
    return Deno.realPathSync(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** path when it exists as a file or directory strictly inside root; null otherwise. */
function _inside(path: string, root: string): string | null {
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    // A domain name longer than a file name can be (255 bytes) has no template.
    if ((error as { code?: string }).code === "ENAMETOOLONG") return null;
    throw error;
  }
  if (!real.startsWith(root.endsWith("/") ? root : `${root}/`)) return null;
  const info = Deno.statSync(real);
  return info.isFile || info.isDirectory ? path : null;
}

/** The first `<dir>/<name><suffix>` that exists inside dir; only names the listing holds are looked at. */
function _tryName(
  source: TemplateSource,
  listing: DirListing | null,
  name: string,
): Found | null {
  if (listing === null || !_isSafeName(name)) return null;
  for (const suffix of source.suffixes) {
    if (!listing.names.has(name + suffix)) continue;
    const path = _inside(join(source.userdataDir, name + suffix), listing.real);
    if (path !== null) return { path, root: listing.real };
  }
  return null;
}

/** md_server's lookup: prefix (or 404), else name, MAC, default_template; null means built-in. */
function _findUserData(
  source: TemplateSource,
  target: UserDataTarget,
  listing: DirListing | null,
): Found | null {
  if (target.prefix !== null) {
    const found = _tryName(source, listing, target.prefix);
    if (found === null) {
      throw new TemplateNotFoundError(
        `No user-data template for userdata_prefix "${target.prefix}" in "${source.userdataDir}"`,
      );
    }
    return found;
  }
  for (const name of [target.name, target.mac]) {
    const found = _tryName(source, listing, name);
    if (found !== null) return found;
  }
  if (source.defaultTemplate !== null && source.defaultTemplate !== "") {
    // The operator's own setting: may live outside userdata_dir. Missing
    // falls through to the built-in template, as in md_server.
    const path = resolve(source.userdataDir, source.defaultTemplate);
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
    // Only a directory's parts are checked against its real path.
    const root = info.isDirectory ? _realDir(path) : path;
    if (root !== null) return { path, root, info };
  }
  return null;
}

// ----------------------------------------------------------- compilation

/** Bottle-compatible helpers reachable from templates as `__mds`. */
const _HELPERS = {
  defined(data: unknown, name: string): boolean {
    return typeof data === "object" && data !== null &&
      Object.hasOwn(data, name) &&
      (data as Record<string, unknown>)[name] !== undefined;
  },
  get(data: unknown, name: string, fallback: unknown): unknown {
    return _HELPERS.defined(data, name) ? (data as Record<string, unknown>)[name] : fallback;
  },
  yaml: _yamlValue,
  truthy: _truthy,
  iter: _iter,
  publicKeys: _publicKeys,
};

// Runs inside every template function, before Eta's `with (it)`, so data
// keys of the same name shadow these.
const FUNCTION_HEADER = `const __mds = this.mds;
const defined = (name) => __mds.defined(it, name);
const get = (name, fallback = null) => __mds.get(it, name, fallback);
const yaml = (value) => __mds.yaml(value);`;

/** Eta configured for user-data: no escaping, bare names, line numbers on errors. */
class _Engine extends Eta {
  /** Helpers for FUNCTION_HEADER. */
  readonly mds = _HELPERS;

  constructor() {
    super({
      autoEscape: false,
      autoFilter: true,
      filterFunction: _renderValue,
      autoTrim: false,
      useWith: true,
      debug: true,
      cache: false,
      functionHeader: FUNCTION_HEADER,
      plugins: [{ processAST: _guardStatements }],
    });
    // Eta calls this with the line of the failing tag; keep it structured.
    this.RuntimeErr = (
      error: Error,
      _template: string,
      line: number,
    ): never => {
      throw new _RenderFailure(error, line);
    };
  }
}

/**
 * Starts every code tag with ";": Eta joins tags with bare newlines, so a
 * tag beginning with "[" or "(" would otherwise continue the line before.
 */
function _guardStatements(ast: AstNode[]): AstNode[] {
  return ast.map((node) => typeof node === "object" && node.t === "e" ? { ...node, val: `;${node.val}` } : node);
}

type AstNode = ReturnType<Eta["parse"]>[number];

class _RenderFailure extends Error {
  constructor(readonly original: unknown, readonly line: number | null) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/** How an interpolated value is written out. */
function _renderValue(value: unknown): string {
  if (value === undefined) {
    throw new ReferenceError("expression is undefined (a missing key?)");
  }
  if (value === null) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Translates and compiles source; any failure is a TemplateError naming file and line. */
function _compile(
  engine: _Engine,
  source: string,
  file: string,
): TemplateFunction {
  const translated = _translate(source, file);
  try {
    return engine.compile(translated);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // Eta's own parse errors say "… at line N col M".
    const parsed = /^(.*?) at line (\d+) col \d+/.exec(message);
    if (parsed) {
      throw new TemplateError(
        `Cannot compile template "${file}": line ${parsed[2]}: ${parsed[1]}`,
        { file, line: Number(parsed[2]), cause: error },
      );
    }
    // A JavaScript syntax error carries no position: find the tag alone.
    const culprit = _findBadTag(engine, translated);
    const detail = culprit?.message ??
      `code tags do not form complete statements (unbalanced "{" or "}"?): ${message.split("\n")[2] ?? message}`;
    const line = culprit?.line ?? null;
    throw new TemplateError(
      `Cannot compile template "${file}": ${line === null ? "" : `line ${line}: `}${detail}`,
      { file, line, cause: error },
    );
  }
}

const BLOCK_OPENERS = ["", "{", "if (1) {", "try {", "f(() => {"];
const BLOCK_CLOSERS = ["", "\n}", "\n})"];

/** The first tag whose code does not parse on its own, if any. */
function _findBadTag(
  engine: _Engine,
  translated: string,
): { line: number | null; message: string } | null {
  let ast;
  try {
    ast = engine.parse(translated);
  } catch {
    return null;
  }
  for (const node of ast) {
    if (typeof node === "string") continue;
    // Code tags may open or close a block, so try the usual completions.
    const variants = node.t === "e"
      ? BLOCK_OPENERS.flatMap((open) => BLOCK_CLOSERS.map((close) => open + node.val + close))
      : [`return (${node.val}\n);`];
    let first: unknown = null;
    const ok = variants.some((code) => {
      try {
        new Function(code);
        return true;
      } catch (error) {
        first ??= error;
        return false;
      }
    });
    if (!ok) {
      return {
        line: node.lineNo ?? null,
        message: first instanceof Error ? first.message : String(first),
      };
    }
  }
  return null;
}

/** Runs a compiled template; errors become a TemplateError, never partial output. */
function _run(
  engine: _Engine,
  fn: TemplateFunction,
  data: Record<string, unknown>,
  file: string,
): string {
  try {
    // A shallow copy, so one part cannot change what the next one sees.
    return engine.render(fn, { ...data });
  } catch (error) {
    const line = error instanceof _RenderFailure ? error.line : null;
    const cause = error instanceof _RenderFailure ? error.original : error;
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new TemplateError(
      `Cannot render template "${file}": ${line === null ? "" : `line ${line}: `}${message}`,
      { file, line, cause },
    );
  }
}

// ------------------------------------------------- md_server translation

// A Bottle output tag, or a "<%" that opens no tag (text never holds another).
const BOTTLE_OUTPUT_OR_OPEN = /\{\{(!?)[ \t]*([^\n]*?)[ \t]*\}\}|<%/g;
const LITERAL_OPEN = '<%= "<%" %>';
const BOTTLE_LINE =
  /^[ \t]*%[ \t]*(if|elif|else|end|endif|endfor|for|include|rebase|import|from|def|while|try|except|finally|with|return|print|setdefault)\b(.*)$/;
const PY_TOKENS = /'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|\b(and|or|not|None|True|False)\b/g;
const PY_TO_JS: Record<string, string> = {
  and: "&&",
  or: "||",
  not: "!",
  None: "null",
  True: "true",
  False: "false",
};

/** Python operators and constants in a Bottle expression, as JavaScript. */
function _pyExpr(expr: string): string {
  return expr.replace(
    PY_TOKENS,
    (token, word: string | undefined) => word === undefined ? token : ` ${PY_TO_JS[word]} `,
  ).trim();
}

/**
 * Rewrites md_server's Bottle forms into Eta, and normalises whitespace
 * around code tags. Never adds or removes a newline, so Eta's line
 * numbers are the file's.
 */
function _translate(source: string, file: string): string {
  const jinja = /^##[ \t]*template:[ \t]*jinja\b/i.test(source);
  let out = "";
  let pos = 0;
  let dropLeadingBlanks = false;
  while (pos < source.length) {
    const open = source.indexOf("<%", pos);
    if (open === -1 || source.indexOf("%>", open + 2) === -1) {
      // No tag from here on: any "<%" is literal text.
      out += _text(source, pos, source.length, {
        jinja,
        file,
        dropLeadingBlanks,
      });
      break;
    }
    const close = _tagEnd(source, open + 2);
    if (close === -1) {
      // Unterminated string or comment in the tag: let Eta report it.
      out += _text(source, pos, open, { jinja, file, dropLeadingBlanks }) +
        source.slice(open);
      break;
    }
    let text = _text(source, pos, open, { jinja, file, dropLeadingBlanks });
    let tag = source.slice(open, close);
    dropLeadingBlanks = false;
    const lineStart = source.lastIndexOf("\n", open - 1) + 1;
    const standalone = !/^<%[-_]?\s*[=~]/.test(tag) && lineStart >= pos &&
      /^[ \t]*$/.test(source.slice(lineStart, open)) &&
      /^[ \t]*(\r?\n|$)/.test(source.slice(close));
    if (standalone) {
      // A code tag alone on its line takes the whole line with it.
      text = text.replace(/[ \t]*$/, "");
      if (!/[-_]%>$/.test(tag)) tag = `${tag.slice(0, -2)}-%>`;
      dropLeadingBlanks = true;
    }
    out += text + tag;
    pos = close;
  }
  return out;
}

/** Index just past the `%>` closing the tag whose code starts at from, or -1. */
function _tagEnd(source: string, from: number): number {
  let i = from;
  while (i < source.length) {
    const c = source[i];
    if (c === "%" && source[i + 1] === ">") return i + 2;
    if (c === "'" || c === '"' || c === "`") {
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === "\\") i++;
        else if (c !== "`" && source[i] === "\n") return -1;
        i++;
      }
      if (i >= source.length) return -1;
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      if (end === -1) return -1;
      i = end + 1;
    }
    i++;
  }
  return -1;
}

/** The text source[start, end) outside any tag, with Bottle forms translated. */
function _text(
  source: string,
  start: number,
  end: number,
  options: { jinja: boolean; file: string; dropLeadingBlanks: boolean },
): string {
  let text = source.slice(start, end);
  if (options.dropLeadingBlanks) text = text.replace(/^[ \t]*/, "");
  if (options.jinja) return text.replaceAll("<%", LITERAL_OPEN);
  const firstLine = source.slice(0, start).split("\n").length;
  const atLineStart = start === 0 || source[start - 1] === "\n";
  return text.split("\n").map((line, index) => {
    const lineNo = firstLine + index;
    if (index > 0 || atLineStart) {
      const control = _bottleLine(line, options.file, lineNo);
      if (control !== null) return control;
    }
    return line.replace(
      BOTTLE_OUTPUT_OR_OPEN,
      (_match, _bang, expr: string | undefined) => {
        if (expr === undefined) return LITERAL_OPEN;
        if (expr === "") {
          throw new TemplateError(
            `Cannot compile template "${options.file}": line ${lineNo}: empty {{ }}`,
            { file: options.file, line: lineNo },
          );
        }
        return `<%= ${_pyExpr(expr)} %>`;
      },
    );
  }).join("\n");
}

/** A Bottle `% …` control line as an Eta code tag; null when line is not one. */
function _bottleLine(
  line: string,
  file: string,
  lineNo: number,
): string | null {
  const match = BOTTLE_LINE.exec(line.replace(/\r$/, ""));
  if (!match) return null;
  const keyword = match[1] ?? "";
  const rest = (match[2] ?? "").trim();
  const cr = line.endsWith("\r") ? "\r" : "";
  const fail = (why: string): never => {
    throw new TemplateError(
      `Cannot compile template "${file}": line ${lineNo}: ${why}`,
      { file, line: lineNo },
    );
  };
  const condition = (): string => {
    if (!rest.endsWith(":") || rest.length === 1) {
      fail(`expected "% ${keyword} <condition>:"`);
    }
    return `__mds.truthy(${_pyExpr(rest.slice(0, -1))})`;
  };
  let code: string;
  switch (keyword) {
    case "if":
      code = `if (${condition()}) {`;
      break;
    case "elif":
      code = `} else if (${condition()}) {`;
      break;
    case "else":
      if (rest !== ":") fail(`expected "% else:"`);
      code = "} else {";
      break;
    case "end":
    case "endif":
    case "endfor":
      code = "}";
      break;
    case "for": {
      const loop = /^([A-Za-z_]\w*)\s+in\s+(.+):$/.exec(rest);
      if (!loop) {
        return fail(`only "% for <name> in <expression>:" is supported`);
      }
      code = `for (const ${loop[1]} of __mds.iter(${_pyExpr(loop[2] ?? "")})) {`;
      break;
    }
    default:
      return fail(
        `Python code lines ("% ${keyword}") are not supported; use Eta <% %> tags`,
      );
  }
  return `<% ${code} -%>${cr}`;
}

// --------------------------------------------------------------- helpers

/** Python's truth value, for Bottle's `% if`. */
function _truthy(value: unknown): boolean {
  if (Array.isArray(value) || typeof value === "string") {
    return value.length > 0;
  }
  if (value instanceof Map || value instanceof Set) return value.size > 0;
  if (typeof value === "object" && value !== null) {
    return Object.keys(value).length > 0;
  }
  return Boolean(value);
}

/** What Python's `for` walks: items of a list, keys of a dict. */
function _iter(value: unknown): Iterable<unknown> {
  if (value === null || value === undefined) {
    throw new TypeError(`cannot iterate ${value}`);
  }
  if (typeof value === "string" || Array.isArray(value)) return value;
  if (value instanceof Map) return value.keys();
  if (typeof value === "object" && Symbol.iterator in value) {
    return value as Iterable<unknown>;
  }
  if (typeof value === "object") return Object.keys(value);
  throw new TypeError(`cannot iterate ${typeof value}`);
}

/** Every key line in public_keys (an object name → key), in order. */
function _publicKeys(keys: unknown): string[] {
  if (keys === null || keys === undefined) return [];
  const values = typeof keys === "object" ? Object.values(keys) : [keys];
  return values.flatMap((value) => String(value).split("\n"))
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** value as a YAML flow node that is valid whatever it contains. */
function _yamlValue(value: unknown): string {
  if (value === undefined) {
    throw new ReferenceError("expression is undefined (a missing key?)");
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  // JSON is YAML, except that YAML wants C1 controls, line and paragraph
  // separators and BOMs escaped; those only occur inside strings.
  const json = JSON.stringify(value === null ? null : value) ?? "null";
  return json.replace(
    /[\u007f-\u009f\u2028\u2029\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

// ------------------------------------------------------------ validation

function _firstLine(body: string): string {
  return body.split("\n", 1)[0]?.trim() ?? "";
}

/** Whether a document's first line makes it cloud-config (`#cloud-config`, `#cloud-config-archive`, …). */
function _isCloudConfig(body: string): boolean {
  return _firstLine(body).startsWith("#cloud-config");
}

/** Whether js-yaml parses body to what _validate accepts: a mapping, nothing, or anything for `#cloud-config-…`. */
function _fastYamlAccepts(body: string, firstLine: string): boolean {
  let value: unknown;
  try {
    value = fastYamlLoad(body);
  } catch {
    return false;
  }
  if (firstLine.startsWith("#cloud-config-") || value === null || value === undefined) return true;
  // A plain object only: js-yaml makes dates of timestamps, which the yaml package leaves as strings.
  return Object.prototype.toString.call(value) === "[object Object]";
}

/**
 * Rendered `#cloud-config` (or any cloud-config part) must be a YAML mapping
 * (`#cloud-config-archive` and the like: any YAML). Throws a TemplateError.
 *
 * js-yaml checks first: it is about ten times faster than the yaml package
 * here, and validation runs on every render. A document it accepts as a
 * mapping passes; anything else goes to the yaml package, which gives the
 * error (with its line) or accepts what js-yaml alone refused (e.g. an
 * unknown tag), exactly as before.
 */
function _validate(body: string, file: string): void {
  const firstLine = _firstLine(body);
  if (_fastYamlAccepts(body, firstLine)) return;
  let doc;
  try {
    doc = parseDocument(body);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      // The yaml package reads these two variables while parsing.
      throw new Error(
        `Cannot validate #cloud-config from template "${file}": run with --allow-env=LOG_TOKENS,LOG_STREAM`,
        { cause: error },
      );
    }
    throw error;
  }
  const error = doc.errors[0];
  if (error) {
    const line = error.linePos?.[0].line ?? null;
    throw new TemplateError(
      `Invalid #cloud-config from template "${file}": ${
        line === null ? "" : `line ${line} of the rendered document: `
      }${error.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "")}`,
      { file, line, cause: error },
    );
  }
  // Only plain `#cloud-config` must be a mapping (`-archive` is a list).
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (error) {
    // An alias to no anchor is found only here.
    throw new TemplateError(
      `Invalid #cloud-config from template "${file}": ${(error as Error).message}`,
      { file, line: null, cause: error },
    );
  }
  if (
    !firstLine.startsWith("#cloud-config-") && value !== null &&
    (typeof value !== "object" || Array.isArray(value))
  ) {
    throw new TemplateError(
      `Invalid #cloud-config from template "${file}": the document is not a YAML mapping`,
      { file, line: null },
    );
  }
}

// ------------------------------------------------------------- multipart

/** One rendered part of a multipart document. */
interface _Part {
  name: string;
  type: string;
  body: string;
}

/** Regular files in dir, sorted by name; hidden files, backups (`~`) and escapes skipped. */
async function _listParts(
  dir: string,
  root: string,
): Promise<{ name: string; path: string }[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".") || entry.name.endsWith("~")) continue;
    names.push(entry.name);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: { name: string; path: string }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (_inside(path, root) === null) continue;
    if (Deno.statSync(path).isFile) parts.push({ name, path });
  }
  return parts;
}

// cloud-init's own start-of-part markers (cloudinit/handlers), longest first.
const STARTS_WITH: [string, string][] = [
  ["#cloud-config-archive", "text/cloud-config-archive"],
  ["#cloud-config-jsonp", "text/cloud-config-jsonp"],
  ["#cloud-config", "text/cloud-config"],
  ["#cloud-boothook", "text/cloud-boothook"],
  ["#include-once", "text/x-include-once-url"],
  ["#include", "text/x-include-url"],
  ["#part-handler", "text/part-handler"],
  ["## template: jinja", "text/jinja2"],
  ["#!", "text/x-shellscript"],
];

/** A part's MIME type: from its first line, else from its extension. */
function _partType(name: string, body: string): string {
  const lower = body.slice(0, 64).toLowerCase();
  for (const [marker, type] of STARTS_WITH) {
    if (lower.startsWith(marker)) return type;
  }
  if (/\.ya?ml$/i.test(name)) return "text/cloud-config";
  if (/\.sh$/i.test(name)) return "text/x-shellscript";
  return "text/plain";
}

/** Base64 of a string's UTF-8, in 76-column lines. */
function _base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/.{76}/g, "$&\n").replace(/\n$/, "");
}

/** The Content-Disposition header for a part file name. */
function _disposition(name: string): string {
  if (/^[\x20-\x7e]*$/.test(name)) {
    return `attachment; filename="${name.replace(/["\\]/g, "\\$&")}"`;
  }
  return `attachment; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Assembles parts into a MIME multipart/mixed document, as cloud-init's make-mime does. */
function _multipart(parts: _Part[]): { body: string; boundary: string } {
  const encoded = parts.map((part) => {
    // 7bit only for short-lined ASCII; anything else goes as base64, which
    // Python's email package (cloud-init) decodes without charset guessing.
    const plain = !/[\u0080-\uffff]/.test(part.body) &&
      !/[^\n]{999}/.test(part.body);
    const headers = [
      `Content-Type: ${part.type}; charset="utf-8"`,
      "MIME-Version: 1.0",
      `Content-Transfer-Encoding: ${plain ? "7bit" : "base64"}`,
      `Content-Disposition: ${_disposition(part.name)}`,
    ].join("\n");
    return `${headers}\n\n${plain ? part.body : _base64(part.body)}`;
  });
  let boundary: string;
  do {
    const random = crypto.getRandomValues(new Uint8Array(16));
    boundary = `mdserver-${Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("")}`;
  } while (encoded.some((part) => part.includes(boundary)));
  const body = [
    "MIME-Version: 1.0",
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    "",
    ...encoded.map((part) => `--${boundary}\n${part}`),
    `--${boundary}--`,
    "",
  ].join("\n");
  return { body, boundary };
}
