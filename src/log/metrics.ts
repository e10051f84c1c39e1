/**
 * Prometheus metrics in the text exposition format, served on the admin
 * listener at /metrics. Counters and a latency histogram updated in memory
 * on the request path; gauges and counters kept elsewhere read when scraped
 * (each sampler must cost O(1) in the instance count). Every declared
 * metric is in the first scrape; counters end in `_total`.
 *
 * @module
 */

/** Bucket bounds of the request latency histogram, in seconds. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

/** A gauge sampled at scrape time: labels → value. */
export type GaugeSampler = () => Promise<[Record<string, string>, number][]>;

/** The service's metrics. */
export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #counters = new Map<string, { help: string; value: number }>();
  readonly #gauges = new Map<string, { help: string; sample: GaugeSampler; type: "gauge" | "counter" }>();

  /** Counts one request of an API ("ec2", "openstack", "nocloud", "upload", "admin"…) with its status and duration. */
  observeRequest(api: string, status: number, seconds: number): void {
    const key = `${api}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let histogram = this.#latency.get(api);
    if (!histogram) {
      histogram = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(api, histogram);
    }
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]!) histogram.counts[i]!++;
    }
    histogram.sum += seconds;
    histogram.count++;
  }

  /** Declares a plain counter, so it is exposed (as 0) before it first counts. */
  declareCounter(name: string, help: string): void {
    if (!this.#counters.has(name)) this.#counters.set(name, { help, value: 0 });
  }

  /** Adds to a plain counter (e.g. "mdserver_template_errors_total"). */
  increment(name: string, help: string, by = 1): void {
    const counter = this.#counters.get(name) ?? { help, value: 0 };
    counter.value += by;
    this.#counters.set(name, counter);
  }

  /** The current value of a plain counter. */
  counter(name: string): number {
    return this.#counters.get(name)?.value ?? 0;
  }

  /** Registers a gauge read at scrape time. */
  gauge(name: string, help: string, sample: GaugeSampler): void {
    this.#gauges.set(name, { help, sample, type: "gauge" });
  }

  /** Registers a counter kept elsewhere (its name ends in _total), read at scrape time. */
  sampledCounter(name: string, help: string, sample: GaugeSampler): void {
    this.#gauges.set(name, { help, sample, type: "counter" });
  }

  /** The exposition text. */
  async render(): Promise<string> {
    const lines: string[] = [];
    lines.push("# HELP mdserver_requests_total Requests answered, by API and status.");
    lines.push("# TYPE mdserver_requests_total counter");
    for (const [key, value] of [...this.#requests].sort()) {
      const [api, status] = key.split("\u0000");
      lines.push(`mdserver_requests_total{api="${api}",status="${status}"} ${value}`);
    }
    lines.push("# HELP mdserver_request_duration_seconds Time to answer a request, by API.");
    lines.push("# TYPE mdserver_request_duration_seconds histogram");
    for (const [api, histogram] of [...this.#latency].sort()) {
      LATENCY_BUCKETS.forEach((bound, i) => {
        lines.push(`mdserver_request_duration_seconds_bucket{api="${api}",le="${bound}"} ${histogram.counts[i]}`);
      });
      lines.push(`mdserver_request_duration_seconds_bucket{api="${api}",le="+Inf"} ${histogram.count}`);
      lines.push(`mdserver_request_duration_seconds_sum{api="${api}"} ${histogram.sum}`);
      lines.push(`mdserver_request_duration_seconds_count{api="${api}"} ${histogram.count}`);
    }
    for (const [name, counter] of [...this.#counters].sort()) {
      lines.push(`# HELP ${name} ${counter.help}`, `# TYPE ${name} counter`, `${name} ${counter.value}`);
    }
    for (const [name, gauge] of [...this.#gauges].sort()) {
      lines.push(`# HELP ${name} ${gauge.help}`, `# TYPE ${name} ${gauge.type}`);
      for (const [labels, value] of await gauge.sample()) {
        const text = Object.entries(labels).map(([key, val]) => `${key}="${escapeLabel(val)}"`).join(",");
        lines.push(text ? `${name}{${text}} ${value}` : `${name} ${value}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}
