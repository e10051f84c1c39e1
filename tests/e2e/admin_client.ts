/**
 * A minimal HTTP/1.1 client for mdserver's admin API over its unix socket.
 * The socket is a file, so the test reaches the admin API inside the
 * namespace from outside it, without any TCP permission (and so without
 * any chance of talking to an mdserver that runs on the host itself).
 *
 * @module
 */

/** An answer from the admin API. */
export interface AdminAnswer {
  status: number;
  body: string;
}

/** Sends one request over the unix socket at path; times out after timeoutMs. */
export async function adminCall(
  socket: string,
  method: string,
  path: string,
  options: { body?: string; timeoutMs?: number } = {},
): Promise<AdminAnswer> {
  const connection = await Deno.connect({ transport: "unix", path: socket });
  const timer = setTimeout(() => connection.close(), options.timeoutMs ?? 5000);
  try {
    const body = new TextEncoder().encode(options.body ?? "");
    const head = `${method} ${path} HTTP/1.1\r\nHost: mdserver-admin\r\nConnection: close\r\n` +
      `Content-Length: ${body.byteLength}\r\n\r\n`;
    const request = new Uint8Array([...new TextEncoder().encode(head), ...body]);
    for (let written = 0; written < request.byteLength;) {
      written += await connection.write(request.subarray(written));
    }
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65536);
    while (true) {
      const count = await connection.read(buffer);
      if (count === null) break;
      chunks.push(buffer.slice(0, count));
    }
    return parseResponse(concat(chunks));
  } finally {
    clearTimeout(timer);
    try {
      connection.close();
    } catch {
      // Closed by the timer.
    }
  }
}

/** GET path and parse the JSON body; throws on a non-2xx status. */
export async function adminJson<T>(socket: string, path: string): Promise<T> {
  const answer = await adminCall(socket, "GET", path);
  if (answer.status < 200 || answer.status > 299) {
    throw new Error(`admin GET ${path}: ${answer.status} ${answer.body.trim().slice(0, 300)}`);
  }
  return JSON.parse(answer.body) as T;
}

function parseResponse(bytes: Uint8Array): AdminAnswer {
  const split = indexOf(bytes, [13, 10, 13, 10], 0);
  if (split < 0) throw new Error(`admin API: incomplete HTTP answer (${bytes.byteLength} bytes)`);
  const [statusLine, ...headerLines] = new TextDecoder().decode(bytes.subarray(0, split)).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1]);
  if (!Number.isInteger(status)) throw new Error(`admin API: bad status line "${statusLine}"`);
  const chunked = headerLines.some((line) => /^transfer-encoding:\s*chunked/i.test(line));
  const body = bytes.subarray(split + 4);
  return { status, body: new TextDecoder().decode(chunked ? dechunk(body) : body) };
}

function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const lineEnd = indexOf(bytes, [13, 10], at);
    if (lineEnd < 0) break;
    const size = parseInt(new TextDecoder().decode(bytes.subarray(at, lineEnd)), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return concat(parts);
}

function indexOf(bytes: Uint8Array, needle: number[], from: number): number {
  outer: for (let i = from; i + needle.length <= bytes.byteLength; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const size = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
