/**
 * Load: 1,000 registered guests boot at once. Each does what cloud-init's
 * EC2 datasource does on the IMDSv2 path — a token PUT, the version probe,
 * a recursive crawl of meta-data/, user-data and the identity document —
 * from its own loopback source address, all 1,000 in flight together,
 * against mdserver running as its own process. Zero errors allowed; the
 * server's memory before and after is printed. Timings are printed, never
 * asserted.
 */
import assert from "node:assert/strict";
import { adminSocketFetch, domainXml } from "./_harness.ts";
import { memoryKiB, spawnServer, waitForHealth, writeProcessConfig } from "./_process.ts";

const GUESTS = 1000;
const VERSION = "2021-03-23";
const NETWORK = { address: "127.92.0.0", prefix: 16, gateway: "127.92.0.1" };
const TOKEN_HEADER = "x-aws-ec2-metadata-token";

function domain(n: number) {
  const hex = n.toString(16).padStart(4, "0");
  return {
    name: `load-${n}`,
    uuid: `10ad10ad-${hex}-4000-8000-00000000${hex}`,
    mac: `52:54:00:10:${hex.slice(0, 2)}:${hex.slice(2)}`,
  };
}

/** Runs jobs with at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: limit }, async () => {
    while (queue.length > 0) await job(queue.shift()!);
  }));
}

interface CrawlResult {
  requests: number;
  errors: string[];
}

/** One guest's boot, as cloud-init's DataSourceEc2 reads it. */
async function bootGuest(metadataUrl: string, ipv4: string, instanceId: string): Promise<CrawlResult> {
  const client = Deno.createHttpClient({ localAddress: ipv4 });
  const result: CrawlResult = { requests: 0, errors: [] };
  let token = "";
  const get = async (path: string, init: RequestInit = {}): Promise<string | null> => {
    result.requests++;
    try {
      const headers: Record<string, string> = token ? { [TOKEN_HEADER]: token } : {};
      const response = await fetch(`${metadataUrl}${path}`, { headers, ...init, client });
      const body = await response.text();
      if (response.status !== 200) {
        result.errors.push(`${ipv4} ${path}: ${response.status} ${body.trim()}`);
        return null;
      }
      return body;
    } catch (error) {
      result.errors.push(`${ipv4} ${path}: ${(error as Error).message}`);
      return null;
    }
  };
  const crawl = async (path: string): Promise<void> => {
    const body = await get(path);
    if (body === null || !path.endsWith("/")) return;
    for (const line of body.split("\n").filter((entry) => entry !== "")) {
      const key = /^(\d+)=/.exec(line);
      await crawl(`${path}${key ? `${key[1]}/` : line}`);
    }
  };
  try {
    token = await get("/latest/api/token", {
      method: "PUT",
      headers: { "x-aws-ec2-metadata-token-ttl-seconds": "21600" },
    }) ?? "";
    const id = await get(`/${VERSION}/meta-data/instance-id`);
    if (id !== null && id !== instanceId) result.errors.push(`${ipv4}: instance-id ${id}, expected ${instanceId}`);
    await crawl(`/${VERSION}/meta-data/`);
    await get(`/${VERSION}/user-data`);
    const document = await get(`/${VERSION}/dynamic/instance-identity/document`);
    if (document !== null && JSON.parse(document).privateIp !== ipv4) {
      result.errors.push(`${ipv4}: identity document of another guest`);
    }
  } finally {
    client.close();
  }
  return result;
}

Deno.test("1,000 guests crawling the EC2 API at once from their own addresses get no error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-load-" });
  const cfg = await writeProcessConfig(dir, "load", { network: NETWORK });
  const server = spawnServer(cfg.file);
  try {
    await waitForHealth(server, cfg.adminSocket);

    const guests: { ipv4: string; instanceId: string }[] = [];
    const registering = performance.now();
    await pool([...Array(GUESTS).keys()], 16, async (n) => {
      const response = await adminSocketFetch(cfg.adminSocket, `/v1/instances`, {
        method: "POST",
        body: domainXml(domain(n)),
      });
      const json = await response.json();
      assert.equal(response.status, 201, JSON.stringify(json));
      guests.push({ ipv4: json.ipv4, instanceId: json.instance_id });
    });
    const registered = (performance.now() - registering) / 1000;
    const before = await memoryKiB(server.pid);

    // Every guest waits at the gate, so that all 1,000 boots start together.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => open = resolve);
    let inFlight = 0;
    let mostInFlight = 0;
    const boots = guests.map(async (guest) => {
      await gate;
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      try {
        return await bootGuest(cfg.metadataUrl, guest.ipv4, guest.instanceId);
      } finally {
        inFlight--;
      }
    });
    const storming = performance.now();
    open();
    const results = await Promise.all(boots);
    const seconds = (performance.now() - storming) / 1000;
    const after = await memoryKiB(server.pid);

    const requests = results.reduce((sum, result) => sum + result.requests, 0);
    const errors = results.flatMap((result) => result.errors);
    console.log(
      `${GUESTS} guests registered in ${registered.toFixed(1)} s; storm: ${requests} requests in ${
        seconds.toFixed(1)
      } s ` +
        `(${Math.round(requests / seconds)}/s), ${mostInFlight} boots in flight at once, ${errors.length} errors\n` +
        `server memory: RSS ${Math.round(before.rss / 1024)} MiB before the storm, ${
          Math.round(after.rss / 1024)
        } MiB after, peak ${Math.round(after.peak / 1024)} MiB`,
    );
    assert.deepEqual(errors.slice(0, 20), [], `${errors.length} errors`);
    assert.equal(mostInFlight, GUESTS);
    assert.ok(requests >= GUESTS * 40, `only ${requests} requests`);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
