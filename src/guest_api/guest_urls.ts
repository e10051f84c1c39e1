/**
 * The URLs a guest reaches mdserver by: the metadata listener's base URL
 * and the phone-home and boot-events endpoints below it. Pure; the API, seed images and the
 * SMBIOS snippet all take them from here, so they agree.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { metadataUrl } from "../config/metadata_url.ts";

/** Where cloud-init's phone_home posts, below the metadata URL. */
export const PHONE_HOME_PATH = "/phone-home";

/** Where cloud-init's webhook reporter posts its boot events, below the metadata URL. */
export const BOOT_EVENTS_PATH = "/boot-events";

/** The metadata service's base URL, phone-home and boot-events URLs, as a guest sees them. */
export interface GuestUrls {
  /** e.g. `http://169.254.169.254` (the port only when it is not 80). */
  metadataUrl: string;
  /** e.g. `http://169.254.169.254/phone-home`. */
  phoneHomeUrl: string;
  /** e.g. `http://169.254.169.254/boot-events`. */
  bootEventsUrl: string;
}

/**
 * The guest-side URLs of the metadata listener (port: the configured one,
 * or the one actually bound). A seed image gets the same values as the API,
 * so that it holds the same bytes.
 */
export function guestUrls(config: Config, port: number = config.mdserver.port): GuestUrls {
  const url = metadataUrl(config.mdserver.listenAddress, port);
  return { metadataUrl: url, phoneHomeUrl: `${url}${PHONE_HOME_PATH}`, bootEventsUrl: `${url}${BOOT_EVENTS_PATH}` };
}
