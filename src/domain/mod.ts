/**
 * What a libvirt domain is to mdserver: its domain XML read into a plain
 * `DomainInfo` (name, UUID, MACs per network, vCPUs, memory, `mdserver:`
 * metadata), with the XML treated as hostile; and its name turned into DNS
 * labels and host names. Pure: it imports only fast-xml-parser, does no I/O
 * and knows nothing of HTTP; failures are its own error classes.
 *
 * @module
 */

export {
  type DomainInfo,
  type DomainInterface,
  findNetworkInterface,
  MAX_DOMAIN_XML_BYTES,
  parseDomainXml,
} from "./domain_xml.ts";
export { InvalidDomainError, InvalidDomainXmlError } from "./errors.ts";
export { hostLabel, type HostNames, hostNames, orderedNames } from "./hostname.ts";
