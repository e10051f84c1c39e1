/**
 * The URLs a guest reaches mdserver by: the metadata listener's base URL
 * and the phone-home endpoint below it. Pure; the API, seed images and the
 * SMBIOS snippet all take them from here, so they agree.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { metadataUrl } from "../config/metadata_url.ts";

/** Where cloud-init's phone_home posts, below the metadata URL. */
export const PHONE_HOME_PATH = "/phone-home";

/** The metadata service's base URL and phone-home URL, as a guest sees them. */
export interface GuestUrls {
  /** e.g. `http://169.254.169.254` (the port only when it is not 80). */
  metadataUrl: string;
  /** e.g. `http://169.254.169.254/phone-home`. */
  phoneHomeUrl: string;
}

/**
 * The guest-side URLs of the metadata listener (port: the configured one,
 * or the one actually bound). A seed image gets the same values as the API,
 * so that it holds the same bytes.
 */
export function guestUrls(config: Config, port: number = config.mdserver.port): GuestUrls {
  const url = metadataUrl(config.mdserver.listenAddress, port);
  return { metadataUrl: url, phoneHomeUrl: `${url}${PHONE_HOME_PATH}` };
}
