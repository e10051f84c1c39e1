/**
 * Reading hostile XML: no DOCTYPE or entity declarations, a size and a
 * nesting limit, all checked before fast-xml-parser sees the text; then the
 * document as plain elements with their references decoded.
 *
 * @module
 */

import { XMLParser, XMLValidator } from "fast-xml-parser";
import { InvalidDomainXmlError } from "./errors.ts";

/** Largest XML document accepted, in bytes (1 MiB). */
export const MAX_DOMAIN_XML_BYTES = 1024 * 1024;

/** Deepest element nesting accepted; libvirt's own documents stay under 10. */
const MAX_DEPTH = 64;
const DECLARATION_RE = /<!(DOCTYPE|ENTITY)/i;
// Bounded length keeps a run of bare "&" linear.
const REFERENCE_RE = /&([^;&<\s"']{0,40})(;?)/g;
const PREDEFINED_ENTITIES: Record<string, string> = {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
};

/** An element with its attributes, child elements and decoded direct text. */
export interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: XmlElement[];
  text: string;
}

/** Checks the text and parses it to its root element; throws InvalidDomainXmlError. */
export function readXml(xml: string): XmlElement {
  checkSize(xml);
  checkDeclarations(xml);
  checkDepth(xml);
  return parseRoot(xml);
}

function checkSize(xml: string): void {
  // A UTF-16 code unit is at least one UTF-8 byte and at most three.
  if (xml.length * 3 <= MAX_DOMAIN_XML_BYTES) return;
  const bytes = xml.length > MAX_DOMAIN_XML_BYTES ? xml.length : new TextEncoder().encode(xml).length;
  if (bytes > MAX_DOMAIN_XML_BYTES) {
    throw new InvalidDomainXmlError(
      `domain XML is too large: ${
        xml.length > MAX_DOMAIN_XML_BYTES ? "over " : ""
      }${bytes} bytes, at most ${MAX_DOMAIN_XML_BYTES} are accepted`,
    );
  }
}

function checkDeclarations(xml: string): void {
  const match = DECLARATION_RE.exec(xml);
  if (match) {
    throw new InvalidDomainXmlError(
      `domain XML must not contain a DOCTYPE or ENTITY declaration: found "${match[0]}" on line ${
        lineAt(xml, match.index)
      }`,
    );
  }
}

/** What checkDepth steps over whole, by its opening and closing text: comments, CDATA, processing instructions. */
const SKIPPED: readonly [string, string][] = [["<!--", "-->"], ["<![CDATA[", "]]>"], ["<?", "?>"]];

/** Counts element nesting without a parser; malformed input is left to the validator. */
function checkDepth(xml: string): void {
  let depth = 0;
  let i = xml.indexOf("<");
  while (i !== -1) {
    let end: number;
    const skipped = SKIPPED.find(([open]) => xml.startsWith(open, i));
    if (skipped !== undefined) {
      const [open, close] = skipped;
      end = xml.indexOf(close, i + open.length);
      if (end === -1) return;
      end += close.length - 1;
    } else if (xml.startsWith("</", i)) {
      end = xml.indexOf(">", i + 2);
      if (end === -1) return;
      depth--;
    } else {
      end = endOfStartTag(xml, i + 1);
      if (end === -1) return;
      if (xml[end - 1] !== "/") {
        depth++;
        if (depth > MAX_DEPTH) {
          throw new InvalidDomainXmlError(
            `domain XML is nested too deeply: more than ${MAX_DEPTH} levels at line ${lineAt(xml, i)}`,
          );
        }
      }
    }
    i = xml.indexOf("<", end + 1);
  }
}

/** Index of the ">" closing a start tag, skipping quoted attribute values; -1 if none. */
function endOfStartTag(xml: string, from: number): number {
  let quote = "";
  for (let j = from; j < xml.length; j++) {
    const c = xml[j];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === ">") {
      return j;
    }
  }
  return -1;
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (
    let i = text.indexOf("\n");
    i !== -1 && i < index;
    i = text.indexOf("\n", i + 1)
  ) {
    line++;
  }
  return line;
}

function parseRoot(xml: string): XmlElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    throw new InvalidDomainXmlError(
      `Cannot parse domain XML: line ${line}${col ? `, column ${col}` : ""}: ${oneLine(msg)}`,
    );
  }
  let nodes: unknown;
  try {
    nodes = new XMLParser({
      preserveOrder: true,
      ignoreAttributes: false,
      attributeNamePrefix: "",
      processEntities: false,
      htmlEntities: false,
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: false,
      ignoreDeclaration: true,
      ignorePiTags: true,
      cdataPropName: "#cdata",
    }).parse(xml);
  } catch (error) {
    throw new InvalidDomainXmlError(
      `Cannot parse domain XML: ${oneLine(error instanceof Error ? error.message : String(error))}`,
    );
  }
  const roots = Array.isArray(nodes) ? nodes.map(toElement).filter((el) => el !== null) : [];
  const root = roots[0];
  if (root === undefined) {
    throw new InvalidDomainXmlError("Cannot parse domain XML: no root element");
  }
  if (roots.length > 1) {
    throw new InvalidDomainXmlError(
      `Cannot parse domain XML: more than one root element (<${root.name}> and <${roots[1]?.name}>)`,
    );
  }
  if (root.name !== "domain") {
    throw new InvalidDomainXmlError(
      `domain XML has root element <${root.name}>, expected <domain>`,
    );
  }
  return root;
}

/** Converts one fast-xml-parser preserveOrder node; null for text, comments and the like. */
function toElement(node: unknown): XmlElement | null {
  if (typeof node !== "object" || node === null) return null;
  const record = node as Record<string, unknown>;
  const name = Object.keys(record).find((key) => key !== ":@" && key !== "#text" && key !== "#cdata");
  if (name === undefined) return null;
  const attrs = new Map<string, string>();
  const rawAttrs = record[":@"];
  if (typeof rawAttrs === "object" && rawAttrs !== null) {
    for (const [key, value] of Object.entries(rawAttrs)) {
      attrs.set(key, decodeReferences(String(value)));
    }
  }
  const children: XmlElement[] = [];
  let text = "";
  const rawChildren = record[name];
  for (const child of Array.isArray(rawChildren) ? rawChildren : []) {
    if (typeof child !== "object" || child === null) continue;
    if ("#text" in child) {
      text += decodeReferences(String(child["#text"]));
    } else if ("#cdata" in child) {
      // CDATA is literal: no references to decode.
      const parts = Array.isArray(child["#cdata"]) ? child["#cdata"] : [];
      for (const part of parts) {
        if (typeof part === "object" && part !== null && "#text" in part) {
          text += String(part["#text"]);
        }
      }
    } else {
      const element = toElement(child);
      if (element) children.push(element);
    }
  }
  return { name, attrs, children, text };
}

/** Decodes the five predefined entities and character references; anything else is an error, as no entity can be declared. */
function decodeReferences(raw: string): string {
  if (!raw.includes("&")) return raw;
  return raw.replace(REFERENCE_RE, (match, ref: string, semicolon: string) => {
    if (semicolon) {
      if (Object.hasOwn(PREDEFINED_ENTITIES, ref)) {
        return PREDEFINED_ENTITIES[ref] ?? "";
      }
      const code = /^#x[0-9a-f]{1,6}$/i.test(ref)
        ? parseInt(ref.slice(2), 16)
        : /^#[0-9]{1,7}$/.test(ref)
        ? parseInt(ref.slice(1), 10)
        : NaN;
      if (
        code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff)
      ) {
        return String.fromCodePoint(code);
      }
    }
    throw new InvalidDomainXmlError(
      `Cannot parse domain XML: unknown entity or bare "&" in ${
        JSON.stringify(match)
      } (write "&amp;" for a literal "&")`,
    );
  });
}

/** The parser quotes the offending input; keep its message one short line. */
function oneLine(message: string): string {
  const line = message.replace(/\s+/g, " ");
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
