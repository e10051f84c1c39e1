/**
 * Turning an uploaded libvirt domain XML into a stored instance: the one
 * path shared by md_server's `/instance-upload`, the admin API and the hook.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { findNetworkInterface, parseDomainXml } from "../domain/domain_xml.ts";
import type { Instance } from "./instance.ts";
import { HttpError } from "../http/errors.ts";
import type { InstanceStore } from "./store.ts";

/** The answer to an upload. */
export interface UploadResult {
  instance: Instance;
  created: boolean;
}

/**
 * Parses and stores a domain. Bad XML is a 400, a domain with no interface
 * on the managed network a 422; either way nothing is changed.
 */
export async function registerDomainXml(
  xml: string,
  deps: { store: InstanceStore; config: Config },
): Promise<UploadResult> {
  let domain;
  try {
    domain = parseDomainXml(xml);
  } catch (error) {
    throw new HttpError(400, `invalid domain XML: ${(error as Error).message}`);
  }
  const netName = deps.config.dnsmasq.netName;
  const nic = findNetworkInterface(domain, netName);
  if (!nic) {
    throw new HttpError(
      422,
      `domain "${domain.name}" has no interface on network "${netName}" (needs <interface type='network'><source network='${netName}'/>)`,
    );
  }
  return await deps.store.upsert({
    uuid: domain.uuid,
    name: domain.name,
    mac: nic.mac,
    vcpus: domain.vcpus,
    memoryMiB: domain.memoryMiB,
    metadata: domain.metadata,
    tags: domain.tags,
  });
}

/** The JSON an upload answers with. */
export function uploadSummary(result: UploadResult): Record<string, unknown> {
  const { instance } = result;
  return {
    name: instance.name,
    uuid: instance.uuid,
    instance_id: instance.instanceId,
    mac: instance.mac,
    ipv4: instance.ipv4,
    created: result.created,
  };
}

/** Largest request body read, in bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Reads a request body as UTF-8 text, refusing more than MAX_BODY_BYTES (413) or invalid UTF-8 (400). */
export async function readBody(request: Request, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) throw new HttpError(413, `request body over ${limit} bytes`);
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  while (true) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (error) {
      // A client that breaks off or garbles its body (bad chunked encoding).
      throw new HttpError(400, `cannot read the request body: ${(error as Error).message}`);
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, `request body over ${limit} bytes`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "request body is not valid UTF-8");
  }
}
