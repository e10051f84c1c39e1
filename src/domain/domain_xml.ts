/**
 * libvirt domain XML (what `virsh dumpxml` prints and the qemu hook receives
 * on stdin) → a plain {@linkcode DomainInfo}.
 *
 * The XML comes from hooks and uploads, so it is treated as hostile: no
 * DOCTYPE or entity declarations, a size and a nesting limit, all checked
 * before fast-xml-parser sees it.
 *
 * @module
 */

import { XMLParser, XMLValidator } from "fast-xml-parser";

/** One <interface> of a domain. */
export interface DomainInterface {
  /** Lower-case, colon-separated: "52:54:00:ab:cd:ef". */
  mac: string;
  /** `<source network='…'>`. */
  network: string | null;
  /** `<source bridge='…'>`; libvirt also prints it for a running `type='network'` interface. */
  bridge: string | null;
  /** The interface type attribute: "network", "bridge", … ("" when absent). */
  type: string;
  /** `<model type='virtio'/>`. */
  model: string | null;
}

/** What mdserver needs of a libvirt domain. */
export interface DomainInfo {
  name: string;
  /** Lower-case canonical 8-4-4-4-12. */
  uuid: string;
  vcpus: number | null;
  /** `<memory>` converted to whole MiB (rounded down). */
  memoryMiB: number | null;
  /** Interfaces with a MAC address, in document order. */
  interfaces: DomainInterface[];
  /** mdserver metadata keys → text. */
  metadata: Record<string, string>;
  /** From `<mdserver:tags>`. */
  tags: Record<string, string>;
}

/** Largest XML document accepted, in bytes (1 MiB). */
export const MAX_DOMAIN_XML_BYTES = 1024 * 1024;

/** Deepest element nesting accepted; libvirt's own documents stay under 10. */
const MAX_DEPTH = 64;
/** Longest domain name: it becomes a DNS name. */
const MAX_NAME_LENGTH = 253;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_NO_DASHES_RE = /^[0-9a-f]{32}$/i;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const KEY_RE = /^[A-Za-z0-9_.-]+$/;
// Cc: C0, DEL and C1 controls.
const CONTROL_RE = /\p{Cc}/u;
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
// libvirt's scaled-integer units (case-insensitive), in bytes.
const MEMORY_UNITS: Record<string, number> = {
  b: 1,
  bytes: 1,
  k: 2 ** 10,
  kib: 2 ** 10,
  kb: 1e3,
  m: 2 ** 20,
  mib: 2 ** 20,
  mb: 1e6,
  g: 2 ** 30,
  gib: 2 ** 30,
  gb: 1e9,
  t: 2 ** 40,
  tib: 2 ** 40,
  tb: 1e12,
  p: 2 ** 50,
  pib: 2 ** 50,
  pb: 1e15,
  e: 2 ** 60,
  eib: 2 ** 60,
  eb: 1e18,
};

/** An element with its attributes, child elements and decoded direct text. */
interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: XmlElement[];
  text: string;
}

/** Parses domain XML; throws SyntaxError (unparseable / DOCTYPE / entities / too large / too deep) or TypeError (missing or invalid name/uuid/mac) with a one-line message that quotes the bad value. */
export function parseDomainXml(xml: string): DomainInfo {
  if (typeof xml !== "string") {
    throw new TypeError(`domain XML must be a string, got ${typeof xml}`);
  }
  if (xml.startsWith("\uFEFF")) xml = xml.slice(1);
  checkSize(xml);
  checkDeclarations(xml);
  checkDepth(xml);
  const domain = parseRoot(xml);

  const name = parseName(domain);
  const uuid = parseUuid(domain);
  const metadata = new Map<string, string>();
  const tags = new Map<string, string>();
  const metadataElement = firstChild(domain, "metadata");
  if (metadataElement) {
    const scope = declareNamespaces(
      declareNamespaces(new Map(), domain),
      metadataElement,
    );
    readMetadata(metadataElement, scope, metadata, tags);
  }
  return {
    name,
    uuid,
    vcpus: parseVcpus(domain),
    memoryMiB: parseMemoryMiB(domain),
    interfaces: parseInterfaces(domain),
    // fromEntries makes own properties, so a key like "__proto__" survives.
    metadata: Object.fromEntries(metadata),
    tags: Object.fromEntries(tags),
  };
}

/** The first interface whose <source network> equals netName, or undefined. */
export function findNetworkInterface(
  info: DomainInfo,
  netName: string,
): DomainInterface | undefined {
  return info.interfaces.find((iface) => iface.network === netName);
}

function checkSize(xml: string): void {
  // A UTF-16 code unit is at least one UTF-8 byte and at most three.
  if (xml.length * 3 <= MAX_DOMAIN_XML_BYTES) return;
  const bytes = xml.length > MAX_DOMAIN_XML_BYTES ? xml.length : new TextEncoder().encode(xml).length;
  if (bytes > MAX_DOMAIN_XML_BYTES) {
    throw new SyntaxError(
      `domain XML is too large: ${
        xml.length > MAX_DOMAIN_XML_BYTES ? "over " : ""
      }${bytes} bytes, at most ${MAX_DOMAIN_XML_BYTES} are accepted`,
    );
  }
}

function checkDeclarations(xml: string): void {
  const match = DECLARATION_RE.exec(xml);
  if (match) {
    throw new SyntaxError(
      `domain XML must not contain a DOCTYPE or ENTITY declaration: found "${match[0]}" on line ${
        lineAt(xml, match.index)
      }`,
    );
  }
}

/** Counts element nesting without a parser; malformed input is left to the validator. */
function checkDepth(xml: string): void {
  let depth = 0;
  let i = xml.indexOf("<");
  while (i !== -1) {
    let end: number;
    if (xml.startsWith("<!--", i)) {
      end = xml.indexOf("-->", i + 4);
      if (end === -1) return;
      end += 2;
    } else if (xml.startsWith("<![CDATA[", i)) {
      end = xml.indexOf("]]>", i + 9);
      if (end === -1) return;
      end += 2;
    } else if (xml.startsWith("<?", i)) {
      end = xml.indexOf("?>", i + 2);
      if (end === -1) return;
      end += 1;
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
          throw new SyntaxError(
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
    throw new SyntaxError(
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
    throw new SyntaxError(
      `Cannot parse domain XML: ${oneLine(error instanceof Error ? error.message : String(error))}`,
    );
  }
  const roots = Array.isArray(nodes) ? nodes.map(toElement).filter((el) => el !== null) : [];
  const root = roots[0];
  if (root === undefined) {
    throw new SyntaxError("Cannot parse domain XML: no root element");
  }
  if (roots.length > 1) {
    throw new SyntaxError(
      `Cannot parse domain XML: more than one root element (<${root.name}> and <${roots[1]?.name}>)`,
    );
  }
  if (root.name !== "domain") {
    throw new SyntaxError(
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
    throw new SyntaxError(
      `Cannot parse domain XML: unknown entity or bare "&" in ${
        JSON.stringify(match)
      } (write "&amp;" for a literal "&")`,
    );
  });
}

function firstChild(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((child) => child.name === name);
}

function parseName(domain: XmlElement): string {
  const element = firstChild(domain, "name");
  const name = element?.text.trim() ?? "";
  if (name === "") {
    throw new TypeError(
      element ? "domain XML has an empty <name>" : "domain XML has no <name> element",
    );
  }
  const why = "it becomes a file name and a DNS name";
  if (name.length > MAX_NAME_LENGTH) {
    throw new TypeError(
      `domain name ${quote(name)} is ${name.length} characters long: at most ${MAX_NAME_LENGTH} are allowed, as ${why}`,
    );
  }
  if (CONTROL_RE.test(name)) {
    throw new TypeError(
      `domain name ${quote(name)} contains a control character, but ${why}`,
    );
  }
  if (name.includes("/")) {
    throw new TypeError(
      `domain name ${quote(name)} contains "/", but ${why}`,
    );
  }
  if (name === "." || name === "..") {
    throw new TypeError(
      `domain name ${quote(name)} is not allowed, as ${why}`,
    );
  }
  return name;
}

function parseUuid(domain: XmlElement): string {
  const element = firstChild(domain, "uuid");
  if (!element) throw new TypeError("domain XML has no <uuid> element");
  const uuid = element.text.trim();
  if (UUID_RE.test(uuid)) return uuid.toLowerCase();
  if (UUID_NO_DASHES_RE.test(uuid)) {
    const hex = uuid.toLowerCase();
    return [
      hex.slice(0, 8),
      hex.slice(8, 12),
      hex.slice(12, 16),
      hex.slice(16, 20),
      hex.slice(20),
    ].join("-");
  }
  throw new TypeError(
    `domain uuid ${
      quote(uuid)
    } is not a valid UUID: expected 8-4-4-4-12 hex digits such as "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"`,
  );
}

function parseVcpus(domain: XmlElement): number | null {
  const text = firstChild(domain, "vcpu")?.text.trim() ?? "";
  if (!/^[0-9]{1,6}$/.test(text)) return null;
  const vcpus = Number(text);
  return vcpus > 0 ? vcpus : null;
}

function parseMemoryMiB(domain: XmlElement): number | null {
  const element = firstChild(domain, "memory");
  const text = element?.text.trim() ?? "";
  if (!element || !/^[0-9]{1,20}$/.test(text)) return null;
  const unit = (element.attrs.get("unit") ?? "KiB").trim().toLowerCase();
  const factor = Object.hasOwn(MEMORY_UNITS, unit) ? MEMORY_UNITS[unit] : undefined;
  if (factor === undefined) return null;
  const mib = Math.floor(Number(text) * factor / 2 ** 20);
  return Number.isSafeInteger(mib) ? mib : null;
}

function parseInterfaces(domain: XmlElement): DomainInterface[] {
  const interfaces: DomainInterface[] = [];
  let position = 0;
  for (const devices of domain.children) {
    if (devices.name !== "devices") continue;
    for (const el of devices.children) {
      if (el.name !== "interface") continue;
      position++;
      const address = firstChild(el, "mac")?.attrs.get("address");
      // libvirt always prints a MAC; a hand-written file may leave it out.
      if (address === undefined) continue;
      const mac = address.trim();
      if (!MAC_RE.test(mac)) {
        throw new TypeError(
          `interface ${position} of the domain has MAC address ${
            quote(mac)
          }, which is not six hex pairs such as "52:54:00:12:34:56"`,
        );
      }
      const source = firstChild(el, "source");
      interfaces.push({
        mac: mac.toLowerCase(),
        network: source?.attrs.get("network") ?? null,
        bridge: source?.attrs.get("bridge") ?? null,
        type: el.attrs.get("type") ?? "",
        model: firstChild(el, "model")?.attrs.get("type") ?? null,
      });
    }
  }
  return interfaces;
}

/** Returns scope extended with the xmlns declarations of el ("" is the default namespace). */
function declareNamespaces(
  scope: Map<string, string>,
  el: XmlElement,
): Map<string, string> {
  let extended = scope;
  for (const [attr, uri] of el.attrs) {
    const prefix = attr === "xmlns" ? "" : attr.startsWith("xmlns:") ? attr.slice(6) : null;
    if (prefix === null) continue;
    if (extended === scope) extended = new Map(scope);
    extended.set(prefix, uri);
  }
  return extended;
}

/** md_server's `mdserver:` prefix, or any prefix bound to a namespace URI that names mdserver. */
function isMdserverElement(
  el: XmlElement,
  scope: Map<string, string>,
): boolean {
  const colon = el.name.indexOf(":");
  const prefix = colon === -1 ? "" : el.name.slice(0, colon);
  if (prefix === "mdserver") return true;
  const uri = scope.get(prefix);
  return uri !== undefined && /md_?server/i.test(uri);
}

function localName(name: string): string {
  return name.slice(name.indexOf(":") + 1);
}

function readMetadata(
  metadataElement: XmlElement,
  scope: Map<string, string>,
  metadata: Map<string, string>,
  tags: Map<string, string>,
): void {
  for (const el of metadataElement.children) {
    if (!isMdserverElement(el, declareNamespaces(scope, el))) continue;
    if (localName(el.name) === "tags") {
      readTags(el, tags);
    } else if (el.children.length === 0) {
      setKey(metadata, localName(el.name), el.text);
    } else {
      // libvirt keeps one element per namespace, so keys are often wrapped:
      // <mdserver:instance><mdserver:role>db</mdserver:role>…</mdserver:instance>
      for (const child of el.children) {
        if (localName(child.name) === "tags") {
          readTags(child, tags);
        } else if (child.children.length === 0) {
          setKey(metadata, localName(child.name), child.text);
        }
      }
    }
  }
}

function readTags(tagsElement: XmlElement, tags: Map<string, string>): void {
  for (const el of tagsElement.children) {
    if (localName(el.name) !== "tag") continue;
    const name = el.attrs.get("name");
    if (name !== undefined) setKey(tags, name.trim(), el.text);
  }
}

function setKey(map: Map<string, string>, key: string, text: string): void {
  if (KEY_RE.test(key)) map.set(key, text.trim());
}

/** The parser quotes the offending input; keep its message one short line. */
function oneLine(message: string): string {
  const line = message.replace(/\s+/g, " ");
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/** JSON-quotes a value for an error message, shortened so the message stays one line. */
function quote(value: string): string {
  return JSON.stringify(
    value.length > 80 ? `${value.slice(0, 77)}...` : value,
  );
}
