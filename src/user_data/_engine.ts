/**
 * Eta configured for user-data: no escaping, bare names, md_server forms
 * translated first, line numbers on every error, never partial output.
 *
 * @module
 */

import { Eta } from "eta";
import { translateBottle } from "./_bottle.ts";
import { publicKeyLines } from "../config/public_keys.ts";
import { iterate, truthy, yamlScalar } from "./_helpers.ts";
import { TemplateError } from "./errors.ts";

/** A compiled template. */
export type TemplateFunction = ReturnType<Eta["compile"]>;

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
  yaml: yamlScalar,
  truthy,
  iter: iterate,
  publicKeys: publicKeyLines,
};

// Runs inside every template function, before Eta's `with (it)`, so data
// keys of the same name shadow these.
const FUNCTION_HEADER = `const __mds = this.mds;
const defined = (name) => __mds.defined(it, name);
const get = (name, fallback = null) => __mds.get(it, name, fallback);
const yaml = (value) => __mds.yaml(value);`;

/** Eta configured for user-data: no escaping, bare names, line numbers on errors. */
export class TemplateEngine extends Eta {
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
export function compileTemplate(
  engine: TemplateEngine,
  source: string,
  file: string,
): TemplateFunction {
  const translated = translateBottle(source, file);
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
  engine: TemplateEngine,
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
export function runTemplate(
  engine: TemplateEngine,
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
