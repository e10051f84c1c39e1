/**
 * The kernel's IPv4 neighbour (ARP) table, for `verify_mac`: which link-layer
 * address the host last saw using an IP address, in the network namespace
 * mdserver runs in.
 *
 * The table is read with `ip -j -4 neigh show to <address>` rather than from
 * `/proc/net/arp`: Deno grants files under /proc only to `--allow-all`, which
 * no permission set here uses, while running `ip` is one narrow `--allow-run`.
 *
 * @module
 */

/** One resolved entry of the neighbour table. */
export interface Neighbour {
  /** The neighbour's address. */
  ipv4: string;
  /** Lower-case, colon-separated. */
  mac: string;
  /** The interface it was seen on. */
  device: string;
}

/** Looks up the resolved neighbour entries of an IPv4 address (usually one; none when unresolved). */
export type NeighbourLookup = (ipv4: string) => Promise<Neighbour[]>;

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Parses the JSON of `ip -j neigh show`: entries with a MAC (`lladdr`) are
 * kept, lower-cased; incomplete and failed ones, which have none, are dropped.
 * Throws SyntaxError on text that is not such JSON.
 */
export function parseIpNeighJson(text: string): Neighbour[] {
  const value: unknown = JSON.parse(text.trim() === "" ? "[]" : text);
  if (!Array.isArray(value)) throw new SyntaxError(`Cannot parse "ip neigh" output: not a JSON array`);
  const out: Neighbour[] = [];
  for (const item of value) {
    if (typeof item !== "object" || item === null) continue;
    const { dst, lladdr, dev } = item as Record<string, unknown>;
    if (typeof dst !== "string" || typeof lladdr !== "string" || !MAC_RE.test(lladdr)) continue;
    if (lladdr === "00:00:00:00:00:00") continue;
    out.push({ ipv4: dst, mac: lladdr.toLowerCase(), device: typeof dev === "string" ? dev : "" });
  }
  return out;
}

/**
 * The real lookup: `ip -j -4 neigh show`, in the caller's network namespace.
 * Nothing is cached: every caller is answered from a read of the table that
 * began after it asked, since an older one could miss the entry its own
 * connection made. Callers that ask while a read is under way share the
 * next read, so a boot storm costs a few reads, not one per request.
 */
export function ipNeighLookup(binary = "ip"): NeighbourLookup {
  let running: Promise<Neighbour[]> | null = null;
  let next: Promise<Neighbour[]> | null = null;
  const readTable = async () => {
    const output = await new Deno.Command(binary, {
      args: ["-j", "-4", "neigh", "show"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    if (!output.success) throw new Error(`${binary} neigh show failed: ${decoder.decode(output.stderr).trim()}`);
    return parseIpNeighJson(decoder.decode(output.stdout));
  };
  const fresh = (): Promise<Neighbour[]> => {
    if (running === null) {
      running = readTable().finally(() => running = null);
      return running;
    }
    // The read under way may have begun before this caller asked: wait for the one after it.
    next ??= running.catch(() => {}).then(() => {
      next = null;
      return fresh();
    });
    return next;
  };
  return async (ipv4) => {
    if (!IPV4_RE.test(ipv4)) return [];
    return (await fresh()).filter((entry) => entry.ipv4 === ipv4);
  };
}
