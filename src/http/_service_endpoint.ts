/**
 * `/service/…`: what this metadata service is (name, type, version,
 * location, EC2 versions), and its configuration for the host itself.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { isLoopback } from "../guest_api/mod.ts";
import { HttpError, textResponse } from "./errors.ts";

const SERVICE_KEYS = ["name", "type", "version", "location", "ec2_versions"] as const;

/** The answer of `/service/<key>`. */
export function serviceEndpoint(rest: string[], path: string, source: string, config: Config): Response {
  const [key, ...more] = rest;
  if (more.length > 0) throw new HttpError(404, `not found: ${path}`);
  if (key === undefined) return textResponse([...SERVICE_KEYS, "configuration"].join("\n"));
  switch (key) {
    case "name":
      return textResponse(config.service.name);
    case "type":
      return textResponse(config.service.type);
    case "version":
      return textResponse(`${config.service.version} (${config.service.releaseDate})`);
    case "location":
      return textResponse(config.service.location);
    case "ec2_versions":
      return textResponse(config.service.ec2Versions.join("\n"));
    case "configuration": {
      if (!isLoopback(source) && source !== config.mdserver.listenAddress) {
        throw new HttpError(401, `access denied for ${source}`);
      }
      const lines = [...config.raw]
        .filter(([id]) => !/password|public-keys|template-data/.test(id))
        .map(([id, value]) => `${id}=${value}`);
      return textResponse(lines.join("\n"));
    }
  }
  throw new HttpError(404, `not found: ${path}`);
}
