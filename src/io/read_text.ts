/**
 * Reading a stream of bytes as UTF-8 text with a size limit, for request
 * bodies and the hook's standard input. Failures are classes, so callers
 * turn them into an HTTP status or a one-line reason without reading the
 * message.
 *
 * readText() takes a ReadableStream (a request body); readTextFrom() and
 * readBytesFrom() take anything with a `read(buffer)` method (`Deno.stdin`,
 * a `Deno.Conn`), which spares a short-lived process the start-up of the
 * streams implementation (about 10 ms the first time a stream is used).
 *
 * @module
 */

/** The text was longer than the limit. */
export class TextTooLargeError extends Error {
  /** The limit, in bytes. */
  readonly limit: number;
  /** Builds the error for `what` (e.g. "request body") and the limit. */
  constructor(what: string, limit: number) {
    super(`${what} over ${limit} bytes`);
    this.name = "TextTooLargeError";
    this.limit = limit;
  }
}

/** The bytes were not valid UTF-8. */
export class NotUtf8Error extends Error {
  /** Builds the error for `what` (e.g. "request body"). */
  constructor(what: string) {
    super(`${what} is not valid UTF-8`);
    this.name = "NotUtf8Error";
  }
}

/** The stream broke off or was garbled before its end (bad chunked encoding, a client gone). */
export class StreamReadError extends Error {
  /** Builds the error for `what` from the stream's own failure. */
  constructor(what: string, cause: unknown) {
    super(`cannot read the ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "StreamReadError";
  }
}

/** Options of readText. */
export interface ReadTextOptions {
  /** Largest number of bytes read. */
  limit: number;
  /** What is read, for messages ("request body"). */
  what: string;
  /** Cancels the read; an abort is thrown as the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Reads a whole stream as UTF-8 text; throws TextTooLargeError past the
 * limit (the rest is cancelled), NotUtf8Error, or StreamReadError.
 */
export async function readText(
  stream: ReadableStream<Uint8Array>,
  options: ReadTextOptions,
): Promise<string> {
  const { limit, what, signal } = options;
  const reader = stream.getReader();
  const cancel = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", cancel, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        signal?.throwIfAborted();
        throw new StreamReadError(what, error);
      }
      if (chunk.done) break;
      size += chunk.value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        throw new TextTooLargeError(what, limit);
      }
      chunks.push(chunk.value);
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
  signal?.throwIfAborted();
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new NotUtf8Error(what);
  }
}

/** What readBytesFrom reads: `Deno.stdin`, a `Deno.Conn`. */
export interface ByteSource {
  /** Reads into `buffer`; resolves to the number of bytes read, or null at the end. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Reads a source to its end, up to `limit` bytes; throws TextTooLargeError
 * past the limit, StreamReadError when a read fails, and the signal's reason
 * on abort (a read pending then is left behind, not waited for).
 */
export async function readBytesFrom(
  source: ByteSource,
  options: ReadTextOptions,
): Promise<Uint8Array> {
  const { limit, what, signal } = options;
  signal?.throwIfAborted();
  let aborted: Promise<never> | null = null;
  let onAbort = () => {};
  if (signal) {
    aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => {});
  }
  let bytes = new Uint8Array(Math.min(limit + 1, 64 * 1024));
  let size = 0;
  try {
    while (true) {
      if (size === bytes.byteLength) {
        if (size > limit) throw new TextTooLargeError(what, limit);
        const larger = new Uint8Array(Math.min(limit + 1, size * 2));
        larger.set(bytes);
        bytes = larger;
      }
      let count: number | null;
      try {
        const read = source.read(bytes.subarray(size));
        count = await (aborted ? Promise.race([read, aborted]) : read);
      } catch (error) {
        signal?.throwIfAborted();
        throw new StreamReadError(what, error);
      }
      if (count === null) break;
      size += count;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (size > limit) throw new TextTooLargeError(what, limit);
  return bytes.subarray(0, size);
}

/** readBytesFrom(), decoded as UTF-8; also throws NotUtf8Error. */
export async function readTextFrom(
  source: ByteSource,
  options: ReadTextOptions,
): Promise<string> {
  const bytes = await readBytesFrom(source, options);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new NotUtf8Error(options.what);
  }
}
