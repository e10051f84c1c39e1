/**
 * Whether cloud-init will accept a rendered cloud-config document, decided
 * the way cloud-init decides it: a document is cloud-config by its start
 * (see start_type.ts, so `#Cloud-Config` counts), and is parsed by PyYAML's
 * safe loader (YAML 1.1), which must give a mapping or nothing
 * (`#cloud-config-archive` and `-jsonp` are any YAML).
 *
 * The yaml package does the parsing, told what PyYAML does differently:
 * - a duplicate key is not an error (the last one wins); it is reported as
 *   a warning, so that the operator hears of it;
 * - a tag the safe loader has no constructor for (`!!python/tuple`,
 *   `!Ref`…) and a value its tag cannot hold (`!!int x`) are errors;
 * - characters PyYAML's reader refuses (C0 and C1 controls but tab, line
 *   feed, carriage return and NEL; DEL; U+FFFE and U+FFFF) are errors;
 * - NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are line breaks;
 * - a tab where PyYAML's scanner looks for a token (indentation, after
 *   `key:` or `-`, inside a plain scalar, after a value) is an error; tabs
 *   inside quoted scalars, block scalars and comments are not;
 * - a mapping key that is a list or mapping is an error (unhashable);
 * - a `...` with no document before it is an error.
 * tests/yaml_pyyaml_test.ts holds a corpus of such documents against
 * Debian's PyYAML.
 *
 * @module
 */

import { CST, type Document, isAlias, isCollection, isMap, isScalar, Lexer, parseDocument, visit } from "yaml";
import { TemplateError } from "./errors.ts";
import { typeFromStart } from "./start_type.ts";

/** The cloud-config kinds whose YAML cloud-init parses. */
export type CloudConfigKind = "text/cloud-config" | "text/cloud-config-archive" | "text/cloud-config-jsonp";

/** The cloud-config kind of a document by its start, or null when cloud-init does not read it as YAML config. */
export function cloudConfigKind(body: string): CloudConfigKind | null {
  const type = typeFromStart(body);
  return type === "text/cloud-config" || type === "text/cloud-config-archive" || type === "text/cloud-config-jsonp"
    ? type
    : null;
}

/** A problem cloud-init tolerates (a duplicate key): served, but worth a line in the log. */
export interface YamlWarning {
  /** Line in the rendered document, if known. */
  line: number | null;
  /** What is wrong. */
  message: string;
}

// PyYAML's Reader.NON_PRINTABLE, as a JavaScript class over UTF-16 (lone surrogates included).
const NON_PRINTABLE =
  // deno-lint-ignore no-control-regex
  /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNICODE_BREAKS = /[\x85\u2028\u2029]/g;

/**
 * Checks a document that must be cloud-config of `kind`; throws a
 * TemplateError naming file and line when cloud-init would refuse it, and
 * returns the warnings it would pass over.
 */
export function checkCloudConfig(body: string, file: string, kind: CloudConfigKind): YamlWarning[] {
  const fail = (message: string, line: number | null): never => {
    throw new TemplateError(
      `Invalid cloud-config from template "${file}": ${
        line === null ? "" : `line ${line} of the rendered document: `
      }${message}`,
      { file, line },
    );
  };
  const bad = NON_PRINTABLE.exec(body);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(4, "0");
    fail(`character U+${code.toUpperCase()} is not allowed in YAML`, lineAt(body, bad.index));
  }
  const text = pyyamlText(body);
  const { tab, emptyEnd } = scanTokens(text);
  if (tab !== null) fail("a tab where YAML wants spaces (indent and separate with spaces)", lineAt(text, tab));
  if (emptyEnd) fail('"..." ends a document that never started', null);
  // The yaml package reads LOG_TOKENS and LOG_STREAM while parsing: every permission set grants them.
  const doc = parseDocument(text, { version: "1.1", uniqueKeys: false, prettyErrors: false });
  const error = doc.errors[0];
  if (error) fail(firstLine(error.message), lineAt(text, error.pos[0]));
  const unresolved = doc.warnings.find((warning) => warning.code === "TAG_RESOLVE_FAILED");
  if (unresolved) fail(firstLine(unresolved.message), lineAt(text, unresolved.pos[0]));
  const warnings: YamlWarning[] = [];
  visit(doc, {
    Alias(_key, alias) {
      if (alias.resolve(doc) === undefined) fail(`alias *${alias.source} names no anchor before it`, at(alias));
    },
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
        if (isCollection(key)) fail("a list or mapping cannot be a mapping key", at(pair.key));
        if (isScalar(key) && key.value !== "<<") {
          const name = String(key.value);
          if (seen.has(name)) {
            warnings.push({ line: at(pair.key), message: `duplicate key "${name}": the last one wins` });
          }
          seen.add(name);
        }
      }
    },
  });
  if (kind === "text/cloud-config" && !isMappingOrNothing(doc.contents, doc)) {
    fail("the document is not a YAML mapping", null);
  }
  return warnings.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));

  function at(node: unknown): number | null {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? lineAt(text, range[0]) : null;
  }
}

/** Whether a document's root is what PyYAML makes a dict of, or None. */
function isMappingOrNothing(root: unknown, doc: Document): boolean {
  const node = isAlias(root) ? root.resolve(doc) : root;
  if (node === null || node === undefined) return true;
  if (isScalar(node)) return node.value === null;
  return isMap(node) && node.tag !== "tag:yaml.org,2002:set";
}

function firstLine(message: string): string {
  return (message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
}

/** The 1-based line of offset in text. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * body as the yaml package should see it to take it as PyYAML does: NEL,
 * LINE SEPARATOR and PARAGRAPH SEPARATOR are line breaks, except inside a
 * quoted scalar, where they become spaces (which keeps the structure).
 * One at a time, since each break can change what follows it.
 */
function pyyamlText(body: string): string {
  let text = body;
  for (let round = 0; round < MAX_UNICODE_BREAKS; round++) {
    UNICODE_BREAK.lastIndex = 0;
    const match = UNICODE_BREAK.exec(text);
    if (match === null) return text;
    const quoted = scanTokens(text).quoted.some(([start, end]) => start <= match.index && match.index < end);
    text = text.slice(0, match.index) + (quoted ? " " : "\n") + text.slice(match.index + 1);
  }
  return text.replace(UNICODE_BREAKS, "\n");
}

/** Unicode line breaks placed one by one; past that, all at once as plain line breaks. */
const MAX_UNICODE_BREAKS = 64;
const UNICODE_BREAK = /[\x85\u2028\u2029]/g;

/**
 * What PyYAML's scanner sees that the yaml package lets pass: the first
 * tab where a token must start (tabs may stand only inside comments,
 * quoted scalars and block scalars), a `...` before any document; and the
 * spans of quoted scalars.
 */
function scanTokens(text: string): { tab: number | null; emptyEnd: boolean; quoted: [number, number][] } {
  let offset = 0;
  let tab: number | null = null;
  let emptyEnd = false;
  const quoted: [number, number][] = [];
  let content = false; // a node or "---" came before
  let blockScalar = false; // the next scalar is a block scalar's body
  let scalar = false; // this token is a scalar's text
  for (const token of new Lexer().lex(text)) {
    // The lexer's own markers stand for no source text.
    if (token === CST.SCALAR) {
      scalar = true;
      continue;
    }
    if (token === CST.DOCUMENT || token === CST.FLOW_END) continue;
    const type = CST.tokenType(token);
    const isQuoted = type === "single-quoted-scalar" || type === "double-quoted-scalar";
    if (isQuoted) quoted.push([offset, offset + token.length]);
    if (tab === null && token.includes("\t") && !(type === "comment" || isQuoted || (scalar && blockScalar))) {
      tab = offset + token.indexOf("\t");
    }
    if (type === "doc-end" && !content) emptyEnd = true;
    if (!NOT_CONTENT.has(type)) content = true;
    if (type === "block-scalar-header") blockScalar = true;
    else if (scalar) blockScalar = false;
    scalar = false;
    offset += token.length;
  }
  return { tab, emptyEnd, quoted };
}

const NOT_CONTENT = new Set<string | null>([
  "comment",
  "newline",
  "space",
  "directive-line",
  "byte-order-mark",
  "doc-end",
]);
