/**
 * Test helpers: raw TCP exchanges with a server on 127.0.0.1, every read
 * bounded by a timeout.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a raw exchange saw. */
export interface Exchange {
  /** Every byte received, as text. */
  text: string;
  /** The server closed (or reset) the connection before the timeout. */
  closed: boolean;
  /** Milliseconds until the close (or the timeout). */
  ms: number;
}

/** Reads from a connection until EOF, a reset or the timeout. */
export async function readUntilClosed(conn: Deno.Conn, timeoutMs: number): Promise<Exchange> {
  const started = performance.now();
  const buffer = new Uint8Array(65536);
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), timeoutMs));
  let closed = false;
  try {
    for (;;) {
      const read = await Promise.race([conn.read(buffer).catch(() => null), timeout]);
      if (read === "timeout") break;
      if (read === null) {
        closed = true;
        break;
      }
      text += decoder.decode(buffer.subarray(0, read));
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed already
    }
  }
  return { text, closed, ms: performance.now() - started };
}

/** Connects, writes `data` (ignoring a reset), then reads until closed or `timeoutMs`. */
export async function exchange(port: number, data: string | Uint8Array, timeoutMs = 2000): Promise<Exchange> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(typeof data === "string" ? encoder.encode(data) : data);
  } catch {
    // the server may answer and close before all of it is written
  }
  return await readUntilClosed(conn, timeoutMs);
}

/** Writes text to a connection. */
export async function send(conn: Deno.Conn, text: string): Promise<void> {
  await conn.write(encoder.encode(text));
}

/** Reads until `text` holds `count` complete responses with Content-Length bodies, or the timeout. */
export async function readResponses(conn: Deno.Conn, count: number, timeoutMs = 2000): Promise<string[]> {
  const buffer = new Uint8Array(65536);
  let text = "";
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const responses = splitResponses(text);
    if (responses.length >= count || performance.now() > deadline) return responses;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = await Promise.race([
      conn.read(buffer).catch(() => null),
      new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), deadline - performance.now())),
    ]);
    clearTimeout(timer);
    if (read === null || read === "timeout") return splitResponses(text);
    text += decoder.decode(buffer.subarray(0, read));
  }
}

/** Complete responses (head and Content-Length body) at the start of `text`. */
function splitResponses(text: string): string[] {
  const responses: string[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) return responses;
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(rest.slice(0, end))?.[1] ?? "0");
    if (rest.length < end + 4 + length) return responses;
    responses.push(rest.slice(0, end + 4 + length));
    rest = rest.slice(end + 4 + length);
  }
}

/** The status code of a response text, or 0. */
export function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
}
