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
  readonly #histograms = new Map<string, LabelledHistograms>();
  readonly #labelledCounters = new Map<string, { help: string; series: Map<string, number> }>();

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

  /**
   * Declares a counter with labels whose values are present from the first
   * scrape (each at zero), e.g. `mdserver_boots_total{outcome}` for every
   * outcome.
   */
  declareLabelledCounter(name: string, help: string, labels: Record<string, string>[]): void {
    const family = this.#labelledCounters.get(name) ?? { help, series: new Map<string, number>() };
    for (const label of labels) {
      const key = labelText(label);
      if (!family.series.has(key)) family.series.set(key, 0);
    }
    this.#labelledCounters.set(name, family);
  }

  /** Adds to one series of a labelled counter (declared or not). */
  incrementLabelled(name: string, help: string, labels: Record<string, string>, by = 1): void {
    const family = this.#labelledCounters.get(name) ?? { help, series: new Map<string, number>() };
    const key = labelText(labels);
    family.series.set(key, (family.series.get(key) ?? 0) + by);
    this.#labelledCounters.set(name, family);
  }

  /** The current value of a plain counter. */
  counter(name: string): number {
    return this.#counters.get(name)?.value ?? 0;
  }

  /**
   * Declares a histogram with these bucket bounds and label values that are
   * present from the first scrape (each at zero), e.g. every outcome.
   */
  declareHistogram(name: string, help: string, buckets: number[], labels: Record<string, string>[]): void {
    const family: LabelledHistograms = { help, buckets, series: new Map() };
    for (const label of labels) family.series.set(labelText(label), emptyHistogram(buckets));
    this.#histograms.set(name, family);
  }

  /** Adds one observation to a declared histogram. */
  observe(name: string, labels: Record<string, string>, value: number): void {
    const family = this.#histograms.get(name);
    if (!family) return;
    const key = labelText(labels);
    const histogram = family.series.get(key) ?? emptyHistogram(family.buckets);
    family.buckets.forEach((bound, i) => {
      if (value <= bound) histogram.counts[i]!++;
    });
    histogram.sum += value;
    histogram.count++;
    family.series.set(key, histogram);
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
    for (const [name, family] of [...this.#labelledCounters].sort()) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} counter`);
      for (const [labels, value] of family.series) lines.push(`${name}{${labels}} ${value}`);
    }
    for (const [name, family] of [...this.#histograms].sort()) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} histogram`);
      for (const [labels, histogram] of family.series) {
        const prefix = labels ? `${labels},` : "";
        family.buckets.forEach((bound, i) => {
          lines.push(`${name}_bucket{${prefix}le="${bound}"} ${histogram.counts[i]}`);
        });
        lines.push(`${name}_bucket{${prefix}le="+Inf"} ${histogram.count}`);
        lines.push(`${name}_sum${labels ? `{${labels}}` : ""} ${histogram.sum}`);
        lines.push(`${name}_count${labels ? `{${labels}}` : ""} ${histogram.count}`);
      }
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

/** Histograms of one name, by their label text. */
interface LabelledHistograms {
  help: string;
  buckets: number[];
  series: Map<string, Histogram>;
}

function emptyHistogram(buckets: number[]): Histogram {
  return { counts: buckets.map(() => 0), sum: 0, count: 0 };
}

/** `a="x",b="y"` of a label set. */
function labelText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",");
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}
