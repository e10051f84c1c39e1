/**
 * The URL guests reach the metadata service at, as the SMBIOS serial, the
 * templates' `metadata_url` and the service's start-up line spell it.
 *
 * @module
 */

/** `http://<address>` with `:<port>` unless the port is 80, e.g. `http://169.254.169.254`. */
export function metadataUrl(listenAddress: string, port: number): string {
  return port === 80 ? `http://${listenAddress}` : `http://${listenAddress}:${port}`;
}
