/**
 * etcd's v3 JSON gateway over fetch: POST /v3/kv/range, /v3/kv/txn,
 * /v3/watch with JSON bodies (keys and values in base64). Requests go to
 * one endpoint at a time; one that cannot be reached, times out or answers
 * that it has no leader hands the request to the next, and when every
 * endpoint has failed the request is a StoreUnavailableError — bounded by
 * the endpoints' number times the timeout.
 *
 * @module
 */

import { StoreUnavailableError } from "./errors.ts";

/** How the client reaches the cluster. */
export interface EtcdClientOptions {
  /** Client URLs of the members, e.g. http://127.0.0.1:2379. */
  endpoints: readonly string[];
  /** Time one endpoint has to answer, in ms. */
  timeoutMs: number;
}

/** A key-value pair as the gateway reports it. */
export interface EtcdKv {
  key: string;
  value?: string;
  mod_revision?: string;
  create_revision?: string;
}

/** The header of every answer. */
export interface EtcdHeader {
  revision?: string;
  member_id?: string;
  raft_term?: string;
}

/** A gateway answer that is an etcd error (a failed request, not a failed compare). */
class EtcdAnswerError extends Error {
  readonly retryElsewhere: boolean;
  constructor(message: string, retryElsewhere: boolean) {
    super(message);
    this.name = "EtcdAnswerError";
    this.retryElsewhere = retryElsewhere;
  }
}

/** The JSON gateway of a cluster. */
export class EtcdClient {
  readonly #endpoints: readonly string[];
  readonly #timeoutMs: number;
  /** The endpoint tried first: the last one that answered. */
  #current = 0;
  #lastContactMs: number | null = null;
  #lastError: string | null = null;
  #reachable = true;

  /** A client of the cluster at these endpoints. */
  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new Error("etcd: no endpoints");
    this.#endpoints = options.endpoints.map((url) => url.replace(/\/+$/, ""));
    this.#timeoutMs = options.timeoutMs;
  }

  /** The endpoints, in order. */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** What the last requests said of the cluster. */
  state(): { reachable: boolean; lastContactMs: number | null; endpoint: string; lastError: string | null } {
    return {
      reachable: this.#reachable,
      lastContactMs: this.#lastContactMs,
      endpoint: this.#endpoints[this.#current]!,
      lastError: this.#lastError,
    };
  }

  /** POSTs `body` to `path` of an endpoint that answers, and returns its JSON. */
  async call<T>(path: string, body: unknown): Promise<T> {
    const failures: string[] = [];
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const index = (this.#current + tried) % this.#endpoints.length;
      const endpoint = this.#endpoints[index]!;
      try {
        const answer = await this.#post<T>(endpoint, path, body);
        this.#current = index;
        this.#reachable = true;
        this.#lastContactMs = Date.now();
        return answer;
      } catch (error) {
        if (error instanceof EtcdAnswerError && !error.retryElsewhere) throw error;
        failures.push(`${endpoint}: ${(error as Error).message}`);
      }
    }
    this.#reachable = false;
    this.#lastError = failures.join("; ");
    throw new StoreUnavailableError(`the etcd cluster cannot be reached (${this.#lastError})`);
  }

  /**
   * Opens a watch stream on an endpoint that answers (the next one after
   * `after`, so a lost stream moves on): the response whose body carries one
   * JSON object per line, and the endpoint's index.
   */
  async openStream(path: string, body: unknown, signal: AbortSignal, after = -1): Promise<Response> {
    const failures: string[] = [];
    for (let tried = 0; tried < this.#endpoints.length; tried++) {
      const index = (Math.max(after, this.#current - 1) + 1 + tried) % this.#endpoints.length;
      const endpoint = this.#endpoints[index]!;
      try {
        const response = await fetch(endpoint + path, { method: "POST", body: JSON.stringify(body), signal });
        if (response.ok && response.body) return response;
        failures.push(`${endpoint}: HTTP ${response.status}`);
        await response.body?.cancel();
      } catch (error) {
        if (signal.aborted) throw error;
        failures.push(`${endpoint}: ${(error as Error).message}`);
      }
    }
    throw new StoreUnavailableError(`no etcd endpoint accepted a watch (${failures.join("; ")})`);
  }

  async #post<T>(endpoint: string, path: string, body: unknown): Promise<T> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    try {
      response = await fetch(endpoint + path, { method: "POST", body: JSON.stringify(body), signal });
    } catch (error) {
      if (signal.aborted) throw new Error(`no answer within ${this.#timeoutMs} ms`);
      throw error;
    }
    const text = await response.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text);
    } catch {
      throw new EtcdAnswerError(`HTTP ${response.status}: ${text.slice(0, 200)}`, true);
    }
    if (!response.ok || typeof json.error === "string" || typeof json.code === "number") {
      const message = String(json.message ?? json.error ?? `HTTP ${response.status}`);
      // Unavailable (14), deadline exceeded (4), or a member without a leader: another member may do.
      const code = Number(json.code);
      const elsewhere = code === 14 || code === 4 || /leader|timed out|unavailable|stopped/i.test(message);
      throw new EtcdAnswerError(`etcd: ${message}`, elsewhere);
    }
    return json as T;
  }
}
