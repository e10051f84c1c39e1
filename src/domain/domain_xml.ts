/**
 * libvirt domain XML (what `virsh dumpxml` prints and the qemu hook receives
 * on stdin) → a plain {@linkcode DomainInfo}. Reading the XML itself, which
 * comes from hooks and uploads and is treated as hostile, is in `_xml.ts`.
 *
 * @module
 */

import { InvalidDomainError } from "./errors.ts";
import { MAX_DOMAIN_XML_BYTES, readXml, type XmlElement } from "./_xml.ts";

export { MAX_DOMAIN_XML_BYTES };

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
  /** The domain name. */
  name: string;
  /** Lower-case canonical 8-4-4-4-12. */
  uuid: string;
  /** `<vcpu>`, or null when absent. */
  vcpus: number | null;
  /** `<memory>` converted to whole MiB (rounded down). */
  memoryMiB: number | null;
  /** Interfaces with a MAC address, in document order. */
  interfaces: DomainInterface[];
  /** mdserver metadata keys → text. */
  metadata: Record<string, string>;
  /** From `<mdserver:tags>`. */
  tags: Record<string, string>;
  /** `<source file>` of every `<disk device='cdrom'>`, in document order (a config drive is one of them). */
  cdromFiles: string[];
}

/** Longest domain name: it becomes a DNS name. */
const MAX_NAME_LENGTH = 253;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_NO_DASHES_RE = /^[0-9a-f]{32}$/i;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const KEY_RE = /^[A-Za-z0-9_.-]+$/;
// Cc: C0, DEL and C1 controls (LF, VT, FF, CR and NEL among them); Zl, Zp: LINE and PARAGRAPH SEPARATOR.
// Together every Unicode line break, and every one PyYAML (cloud-init) reads as a line break.
const CONTROL_RE = /[\p{Cc}\p{Zl}\p{Zp}]/u;
// In metadata and tag values (trimmed): the same but tab. A value reaches templates such as
// `role: {{role}}`, where a line break would add keys to the guest's cloud-config.
// deno-lint-ignore no-control-regex
const VALUE_CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/;
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

/** Parses domain XML; throws InvalidDomainXmlError (unparseable / DOCTYPE / entities / too large / too deep) or InvalidDomainError (missing or invalid name/uuid/mac) with a one-line message that quotes the bad value. */
export function parseDomainXml(xml: string): DomainInfo {
  if (typeof xml !== "string") {
    throw new TypeError(`domain XML must be a string, got ${typeof xml}`);
  }
  if (xml.startsWith("\uFEFF")) xml = xml.slice(1);
  const domain = readXml(xml);

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
    cdromFiles: parseCdromFiles(domain),
  };
}

/** The first interface whose <source network> equals netName, or undefined. */
export function findNetworkInterface(
  info: DomainInfo,
  netName: string,
): DomainInterface | undefined {
  return info.interfaces.find((iface) => iface.network === netName);
}

function firstChild(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((child) => child.name === name);
}

function parseName(domain: XmlElement): string {
  const element = firstChild(domain, "name");
  const name = element?.text.trim() ?? "";
  if (name === "") {
    throw new InvalidDomainError(
      element ? "domain XML has an empty <name>" : "domain XML has no <name> element",
    );
  }
  const why = "it becomes a file name and a DNS name";
  if (name.length > MAX_NAME_LENGTH) {
    throw new InvalidDomainError(
      `domain name ${quote(name)} is ${name.length} characters long: at most ${MAX_NAME_LENGTH} are allowed, as ${why}`,
    );
  }
  if (CONTROL_RE.test(name)) {
    throw new InvalidDomainError(
      `domain name ${quote(name)} contains a control character or line break, but ${why}`,
    );
  }
  if (name.includes("/")) {
    throw new InvalidDomainError(
      `domain name ${quote(name)} contains "/", but ${why}`,
    );
  }
  if (name === "." || name === "..") {
    throw new InvalidDomainError(
      `domain name ${quote(name)} is not allowed, as ${why}`,
    );
  }
  return name;
}

function parseUuid(domain: XmlElement): string {
  const element = firstChild(domain, "uuid");
  if (!element) throw new InvalidDomainError("domain XML has no <uuid> element");
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
  throw new InvalidDomainError(
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
        throw new InvalidDomainError(
          `interface ${position} of the domain has MAC address ${
            quote(mac)
          }, which is not six hex pairs such as "52:54:00:12:34:56"`,
        );
      }
      const unusable = unusableMac(mac);
      if (unusable !== null) {
        throw new InvalidDomainError(
          `interface ${position} of the domain has MAC address ${quote(mac)}, which is ${unusable}: ` +
            `a guest's interface needs a unicast, non-zero MAC such as "52:54:00:12:34:56"`,
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

/** The source files of the domain's CD-ROM drives; a drive with no medium has none. */
function parseCdromFiles(domain: XmlElement): string[] {
  const files: string[] = [];
  for (const devices of domain.children) {
    if (devices.name !== "devices") continue;
    for (const el of devices.children) {
      if (el.name !== "disk" || el.attrs.get("device") !== "cdrom") continue;
      const file = firstChild(el, "source")?.attrs.get("file")?.trim();
      if (file) files.push(file);
    }
  }
  return files;
}

/** Why a well-formed MAC cannot be a guest's (broadcast, multicast, all zero), or null. */
function unusableMac(mac: string): string | null {
  const octets = mac.split(":").map((pair) => parseInt(pair, 16));
  if (octets.every((octet) => octet === 0xff)) return "the broadcast address";
  if ((octets[0]! & 1) === 1) return "a multicast address";
  if (octets.every((octet) => octet === 0)) return "all zero";
  return null;
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
      setKey(metadata, localName(el.name), el.text, "metadata");
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
    if (name !== undefined) setKey(tags, name.trim(), el.text, "tag");
  }
}

function setKey(map: Map<string, string>, key: string, text: string, what = "metadata"): void {
  if (!KEY_RE.test(key)) return;
  const value = text.trim();
  const bad = VALUE_CONTROL_RE.exec(value);
  if (bad !== null) {
    // Values reach templates: a break only PyYAML sees would add keys to the guest's cloud-config.
    const code = `U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    throw new InvalidDomainError(
      `${what} ${key} = ${quote(value)} contains ${code}, a control character or line break ` +
        `(values are placed in one line of a template, and cloud-init's YAML reader breaks lines there too)`,
    );
  }
  map.set(key, value);
}

/** JSON-quotes a value for an error message, shortened so the message stays one line. */
function quote(value: string): string {
  return JSON.stringify(
    value.length > 80 ? `${value.slice(0, 77)}...` : value,
  );
}
