/**
 * Reading a stream of bytes as UTF-8 text with a size limit, for request
 * bodies and the hook's standard input. Failures are classes, so callers
 * turn them into an HTTP status or a one-line reason without reading the
 * message.
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
