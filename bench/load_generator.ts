/**
 * The load generator of the benchmarks: simulated guests, each bound to its
 * own loopback source address, each sending a fixed list of GET requests one
 * after another, all guests at once. The request sequence is deterministic
 * (no randomness): the same plan drives mdserver and the ceiling server.
 *
 * cloud-init's EC2 datasource (IMDSv1 path, cloud-init 22.4 and later):
 * 1. readiness probe `GET /2009-04-04/meta-data/instance-id`;
 * 2. version probes `GET /<ver>/meta-data/instance-id` for 2021-03-23,
 *    2018-09-24, 2016-09-02 until one answers;
 * 3. `GET /<ver>/user-data`;
 * 4. `GET /<ver>/meta-data/` and a depth-first crawl: at each level the
 *    sub-directories first (with a trailing "/"), then the leaves, `N=name`
 *    keys read as `N/openssh-key` (its `MetadataMaterializer`).
 *
 * cloud-init opens a new `requests.Session` per request, so by default every
 * request here uses a new connection too (`connection: close`).
 *
 * @module
 */

/** One simulated guest: its source address and the paths it requests, in order. */
export interface GuestPlan {
  address: string;
  paths: string[];
}

/** How requests are sent. */
export interface LoadOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8169`. */
  baseUrl: string;
  guests: GuestPlan[];
  /** `close`: a new connection per request, as cloud-init; `keep-alive`: one connection per guest. */
  connection: "close" | "keep-alive";
  /** A request not answered within this many ms fails (counted as an error); default: no limit. */
  timeoutMs?: number;
  /** After this many ms from the start no guest sends another request (those are counted as unsent); default: none. */
  boundMs?: number;
}

/** The raw measurements of one load run. */
export interface LoadSample {
  guests: number;
  requests: number;
  errors: number;
  /** Requests of the plan not sent because the run's time bound had passed. */
  unsent: number;
  firstError: string | null;
  seconds: number;
  /** Latency of every request, ms, in completion order. */
  latencies: Float64Array;
}

/** What one or more load runs measured. */
export interface LoadResult {
  guests: number;
  requests: number;
  /** Requests that failed or did not answer 200. */
  errors: number;
  /** Requests of the plan not sent because the run's time bound had passed. */
  unsent: number;
  /** The first error, for the report. */
  firstError: string | null;
  seconds: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** The versions cloud-init probes, newest first; the minimum version comes last. */
export const CLOUD_INIT_EC2_VERSIONS = ["2021-03-23", "2018-09-24", "2016-09-02"];

/** cloud-init's minimum EC2 version, used for the readiness probe. */
export const CLOUD_INIT_MIN_VERSION = "2009-04-04";

/**
 * The GET requests cloud-init's EC2 datasource sends, in order. `read`
 * answers a path's body, or null when it would not answer 200; it is how the
 * crawl learns the listings (from a tree in memory or over HTTP).
 */
export async function cloudInitEc2Paths(read: (path: string) => Promise<string | null>): Promise<string[]> {
  const paths: string[] = [];
  const get = async (path: string) => {
    paths.push(path);
    return await read(path);
  };
  if (await get(`/${CLOUD_INIT_MIN_VERSION}/meta-data/instance-id`) === null) {
    throw new Error(`readiness probe /${CLOUD_INIT_MIN_VERSION}/meta-data/instance-id did not answer`);
  }
  let version = CLOUD_INIT_MIN_VERSION;
  for (const candidate of CLOUD_INIT_EC2_VERSIONS) {
    if (await get(`/${candidate}/meta-data/instance-id`) !== null) {
      version = candidate;
      break;
    }
  }
  paths.push(`/${version}/user-data`);
  // cloud-init joins "meta-data/" to the version: the listing is asked with its slash.
  const root = `/${version}/meta-data/`;
  const listing = await get(root);
  if (listing === null) throw new Error(`${root} did not answer`);
  await materialize(listing, root, get);
  return paths;
}

/** cloud-init's MetadataMaterializer: sub-directories first, then leaves. */
async function materialize(
  listing: string,
  base: string,
  get: (path: string) => Promise<string | null>,
): Promise<void> {
  const children: string[] = [];
  const leaves = new Map<string, string>();
  for (const line of listing.split("\n")) {
    const field = line.trim();
    const name = field.replace(/\/+$/, "");
    if (field === "" || name === "" || name === "security-credentials") continue;
    if (field.endsWith("/")) {
      if (!children.includes(name)) children.push(name);
      continue;
    }
    const [ident, rest] = field.split(/=(.*)/s, 2) as [string, string | undefined];
    if (rest !== undefined && /^-?\d+$/.test(ident.trim())) leaves.set(rest, `${Number(ident)}/openssh-key`);
    else leaves.set(name, name);
  }
  const prefix = base.endsWith("/") ? base : `${base}/`;
  for (const child of children) {
    const url = `${prefix}${child}/`;
    const body = await get(url);
    if (body === null) throw new Error(`${url} did not answer`);
    await materialize(body, url, get);
  }
  for (const resource of leaves.values()) {
    if (await get(`${prefix}${resource}`) === null) throw new Error(`${prefix}${resource} did not answer`);
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Summarises load runs of the same kind: requests summed, percentiles over all requests. */
export function summarize(samples: LoadSample[]): LoadResult {
  const requests = samples.reduce((sum, sample) => sum + sample.requests, 0);
  const seconds = samples.reduce((sum, sample) => sum + sample.seconds, 0);
  const all = new Float64Array(requests);
  let offset = 0;
  for (const sample of samples) {
    all.set(sample.latencies.subarray(0, sample.requests), offset);
    offset += sample.requests;
  }
  all.sort();
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    guests: Math.max(0, ...samples.map((sample) => sample.guests)),
    requests,
    errors: samples.reduce((sum, sample) => sum + sample.errors, 0),
    unsent: samples.reduce((sum, sample) => sum + sample.unsent, 0),
    firstError: samples.find((sample) => sample.firstError !== null)?.firstError ?? null,
    seconds: round(seconds),
    requestsPerSecond: Math.round(requests / seconds),
    p50Ms: round(percentile(all, 50)),
    p99Ms: round(percentile(all, 99)),
    maxMs: round(all.at(-1) ?? 0),
    meanMs: round(all.reduce((sum, value) => sum + value, 0) / Math.max(1, requests)),
  };
}

/** Runs every guest's plan at once, each guest one request after another. */
export async function runLoad(options: LoadOptions): Promise<LoadSample> {
  const total = options.guests.reduce((sum, guest) => sum + guest.paths.length, 0);
  const latencies = new Float64Array(total);
  let next = 0;
  let errors = 0;
  let unsent = 0;
  let firstError: string | null = null;
  const headers: HeadersInit = options.connection === "close" ? { connection: "close" } : {};
  const fail = (message: string) => {
    errors++;
    firstError ??= message;
  };

  const runGuest = async (guest: GuestPlan) => {
    const client = Deno.createHttpClient({ localAddress: guest.address });
    try {
      for (const [index, path] of guest.paths.entries()) {
        const before = performance.now();
        if (options.boundMs !== undefined && before - started > options.boundMs) {
          unsent += guest.paths.length - index;
          break;
        }
        try {
          const signal = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
          const response = await fetch(`${options.baseUrl}${path}`, { client, headers, signal });
          await response.arrayBuffer();
          if (response.status !== 200) fail(`${guest.address} GET ${path}: ${response.status}`);
        } catch (error) {
          fail(`${guest.address} GET ${path}: ${(error as Error).message}`);
        }
        latencies[next++] = performance.now() - before;
      }
    } finally {
      client.close();
    }
  };

  const started = performance.now();
  await Promise.all(options.guests.map(runGuest));
  const seconds = (performance.now() - started) / 1000;
  return { guests: options.guests.length, requests: next, errors, unsent, firstError, seconds, latencies };
}
