/**
 * The Request a handler receives, made lazily (as `Deno.serve` makes its
 * own): `method`, `url` and the body readers (`text`, `json`, `bytes`,
 * `arrayBuffer`, `blob`) come straight from the parsed head and the body
 * already read; `headers` is built on first use. Anything else (`signal`,
 * `clone`, `formData`, `body` as a stream…) builds a genuine `Request`
 * once and answers from it. It is an `instanceof Request`.
 *
 * Building a genuine Request for every request costs more CPU than the
 * whole of a `Deno.serve` request cycle, which is why this exists.
 *
 * @module
 */

const decoder = new TextDecoder();

/** A request from a guest, as a Request; see the module doc. */
export class GuestRequest implements Request {
  /** The request method, as sent. */
  readonly method: string;
  /** The request URL: the server's base and the request target. */
  readonly url: string;
  /** The request target as the request line gave it (origin-form; an absolute-form target's path). */
  readonly requestTarget: string;
  readonly #pairs: [string, string][];
  #headers: Headers | null = null;
  #body: Uint8Array<ArrayBuffer> | null;
  #used = false;
  #real: Request | null = null;

  constructor(
    method: string,
    base: string,
    target: string,
    headers: [string, string][],
    body: Uint8Array<ArrayBuffer> | null,
  ) {
    this.method = method;
    this.url = base + target;
    this.requestTarget = target;
    this.#pairs = headers;
    this.#body = body;
  }

  /** The header fields (a Headers built on first use). */
  get headers(): Headers {
    return this.#headers ??= new Headers(this.#pairs);
  }

  /** The genuine Request behind the members this class does not answer itself. */
  #genuine(): Request {
    if (this.#real === null) {
      if (this.#used) throw new TypeError("Cannot use a request whose body was read");
      this.#real = new Request(this.url, { method: this.method, headers: this.headers, body: this.#body });
      this.#body = null;
    }
    return this.#real;
  }

  /** The body, once, or a TypeError as Request gives. */
  #take(): Uint8Array<ArrayBuffer> {
    if (this.#used) throw new TypeError("Body already consumed");
    const body = this.#body;
    if (body === null) return new Uint8Array(0);
    this.#used = true;
    this.#body = null;
    return body;
  }

  get body(): ReadableStream<Uint8Array<ArrayBuffer>> | null {
    if (this.#real === null && this.#body === null && !this.#used) return null;
    return this.#genuine().body;
  }
  get bodyUsed(): boolean {
    return this.#real === null ? this.#used : this.#real.bodyUsed;
  }
  text(): Promise<string> {
    if (this.#real !== null) return this.#real.text();
    try {
      return Promise.resolve(decoder.decode(this.#take()));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.#real !== null) return this.#real.bytes();
    try {
      return Promise.resolve(this.#take());
    } catch (error) {
      return Promise.reject(error);
    }
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  }
  async blob(): Promise<Blob> {
    const type = this.headers.get("content-type") ?? "";
    return new Blob([await this.bytes()], { type });
  }
  formData(): Promise<FormData> {
    try {
      return this.#genuine().formData();
    } catch (error) {
      return Promise.reject(error);
    }
  }
  textStream(): ReadableStream<string> {
    return this.#genuine().textStream();
  }
  clone(): Request {
    return this.#genuine().clone();
  }
  get signal(): AbortSignal {
    return this.#genuine().signal;
  }
  get cache(): RequestCache {
    return "default";
  }
  get credentials(): RequestCredentials {
    return "same-origin";
  }
  get destination(): RequestDestination {
    return "";
  }
  get integrity(): string {
    return "";
  }
  get isHistoryNavigation(): boolean {
    return false;
  }
  get isReloadNavigation(): boolean {
    return false;
  }
  get keepalive(): boolean {
    return false;
  }
  get mode(): RequestMode {
    return "cors";
  }
  get redirect(): RequestRedirect {
    return "follow";
  }
  get referrer(): string {
    return "about:client";
  }
  get referrerPolicy(): ReferrerPolicy {
    return "";
  }
  get [Symbol.toStringTag](): string {
    return "Request";
  }
  [Symbol.for("Deno.customInspect")](): string {
    return `Request { method: ${JSON.stringify(this.method)}, url: ${JSON.stringify(this.url)} }`;
  }
}

// `instanceof Request` holds; every member of Request is answered above.
Object.setPrototypeOf(GuestRequest.prototype, Request.prototype);
