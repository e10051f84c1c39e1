/**
 * Fixtures for unit tests: a configuration loaded from INI text through
 * the real loader, and an address pool for a network.
 *
 * @module
 */

import { join } from "node:path";
import type { Config } from "./config/config.ts";
import { loadConfig } from "./config/load.ts";
import { buildPool, type Ipv4Pool, parseIpv4 } from "./ipam/ipv4.ts";
import { tempDir } from "./_temp_dir.ts";

/** Loads INI text as `mdserver.conf` in a fresh folder that holds an empty `ud/` (for `userdata_dir = ud`). */
export async function configFromIni(text: string): Promise<Config> {
  const dir = await tempDir();
  await Deno.mkdir(join(dir, "ud"));
  await Deno.writeTextFile(join(dir, "mdserver.conf"), text);
  return await loadConfig(join(dir, "mdserver.conf"));
}

/** The pool of `address/prefix` with the gateway at `.1` and the metadata address 169.254.169.254. */
export function testPool(address: string, prefix: number): Ipv4Pool {
  const network = parseIpv4(address)!;
  return buildPool({
    network: { address: network, prefix },
    gateway: `${address.split(".").slice(0, 3).join(".")}.1`,
    listenAddress: "169.254.169.254",
  });
}
