/**
 * Where the admin API listens, read from the mdserver configuration file,
 * and one request to it. Shared by the libvirt hook and `ctl`, so it depends
 * on nothing but `config/ini.ts`, `config/files.ts` (the include rules) and
 * the HTTP/1.1 client `http1.ts`: the hook starts a process per domain start
 * and must not load the npm packages the service uses. `ctl` sends with
 * fetch (adminRequest), the hook without (adminExchange); both go to the
 * socket first and to TCP the same way.
 *
 * It reads `[admin] listen_address`, `port`, `socket` and `token_file` from the main file
 * and its `[_include_]`s, the way `loadConfig` does (directories' `*.conf`
 * in lexical order, then files; missing paths skipped; the last value wins;
 * a relative socket path is relative to the folder of the file naming it).
 * It does not validate anything else: the service does that.
 *
 * @module
 */

import { DEFAULT_CONFIG_FILE, includedFiles, parentDir, resolvePath } from "../config/files.ts";
import { type IniEntry, parseIni } from "../config/ini.ts";
import { type Http1Answer, http1Request, type Http1Target } from "./http1.ts";

export { DEFAULT_CONFIG_FILE };
export type { Http1Answer };

/** The admin address when the configuration does not set one. */
export const DEFAULT_ADMIN_ADDRESS = "127.0.0.1";

/** How long a request waits on the unix socket before trying TCP, when the configuration does not say (ms). */
export const DEFAULT_SOCKET_TIMEOUT_MS = 700;

/** The admin port when the configuration does not set one. */
export const DEFAULT_ADMIN_PORT = 8774;

/** The admin socket when the configuration does not set one. */
export const DEFAULT_ADMIN_SOCKET = "/run/mdserver/admin.sock";

/** The file holding the TCP listener's token when the configuration does not name one. */
export const DEFAULT_ADMIN_TOKEN_FILE = "/etc/mdserver/admin.token";

/** The admin API's address: the unix socket (default), TCP when `[admin] listen_address` is set. */
export interface AdminEndpoint {
  /** Host to connect to ("127.0.0.1", "::1"…). */
  address: string;
  /** TCP port. */
  port: number;
  /** Whether the TCP listener is on (`[admin] listen_address` set). */
  tcp: boolean;
  /** Unix socket path, or null (`socket = none`). */
  socket: string | null;
  /** The TCP listener's bearer token file (readable by root only). */
  tokenFile: string;
  /** How long a request waits for the socket to answer before it tries TCP (ms; `[admin] socket_timeout`). */
  socketTimeoutMs: number;
  /** Files read, in order. */
  files: string[];
}

/** What reading the configuration needs from the file system. */
export interface EndpointFileSystem {
  /** The text of a file; throws Deno.errors.NotFound when it is missing. */
  readTextFile(path: string): Promise<string>;
  /** File names in a folder. */
  readDir(path: string): Promise<string[]>;
}

/** The real file system. */
export const realEndpointFileSystem: EndpointFileSystem = {
  readTextFile: (path) => Deno.readTextFile(path),
  async readDir(path) {
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) {
      if (entry.isFile || entry.isSymlink) names.push(entry.name);
    }
    return names;
  },
};

/**
 * Reads the admin endpoint from a configuration file and its includes.
 * Throws when the main file cannot be read or a file cannot be parsed;
 * the messages name the file.
 */
export async function readAdminEndpoint(
  file: string,
  fs: EndpointFileSystem = realEndpointFileSystem,
): Promise<AdminEndpoint> {
  const values = new Map<string, IniEntry>();
  const files = [file];
  const main = parseIni(await readConfigText(file, fs), file);
  for (const entry of main.entries) {
    values.set(`${entry.section}.${entry.key}`, entry);
  }

  const included = await includedFiles(file, {
    directories: values.get("_include_.directories")?.value,
    files: values.get("_include_.files")?.value,
  }, {
    listDirectory: (path) => ignoreMissing(fs.readDir(path)),
    // Read (or found missing) below: one system call per file.
    acceptFile: () => Promise.resolve(true),
  });
  for (const path of included) {
    const text = await ignoreMissing(fs.readTextFile(path));
    if (text === null) continue;
    files.push(path);
    for (const entry of parseIni(text, path).entries) {
      if (entry.section === "admin") values.set(`admin.${entry.key}`, entry);
    }
  }

  const listen = unset(values.get("admin.listen_address")?.value);
  const address = listen ?? DEFAULT_ADMIN_ADDRESS;
  const portText = unset(values.get("admin.port")?.value);
  const port = portText === null ? DEFAULT_ADMIN_PORT : Number(portText);
  if (!/^\d+$/.test(portText ?? "0") || port < 1 || port > 65535) {
    const entry = values.get("admin.port")!;
    throw new SyntaxError(
      `Cannot use config "${entry.file}": line ${entry.line}: [admin] port "${portText}" is not a port number`,
    );
  }
  const socketEntry = values.get("admin.socket");
  const socket = socketEntry === undefined ? DEFAULT_ADMIN_SOCKET : unset(socketEntry.value);
  const tokenEntry = values.get("admin.token_file");
  const tokenFile = unset(tokenEntry?.value);
  const timeoutText = unset(values.get("admin.socket_timeout")?.value);
  const socketTimeoutMs = timeoutText === null ? DEFAULT_SOCKET_TIMEOUT_MS : Number(timeoutText);
  if (!/^\d+$/.test(timeoutText ?? "0") || socketTimeoutMs < 1) {
    const entry = values.get("admin.socket_timeout")!;
    throw new SyntaxError(
      `Cannot use config "${entry.file}": line ${entry.line}: [admin] socket_timeout "${timeoutText}" is not a number of milliseconds`,
    );
  }
  return {
    socketTimeoutMs,
    address,
    port,
    tcp: listen !== null,
    socket: socket === null || socketEntry === undefined ? socket : resolvePath(parentDir(socketEntry.file), socket),
    tokenFile: tokenFile === null ? DEFAULT_ADMIN_TOKEN_FILE : resolvePath(parentDir(tokenEntry!.file), tokenFile),
    files,
  };
}

/** Where requests go, for messages: `unix:/run/mdserver/admin.sock`, the TCP URL, or both. */
export function adminLocation(endpoint: AdminEndpoint): string {
  const places = [
    ...(endpoint.socket !== null ? [`unix:${endpoint.socket}`] : []),
    ...(endpoint.tcp ? [adminBaseUrl(endpoint)] : []),
  ];
  return places.length > 0 ? places.join(" or ") : "nowhere ([admin] socket = none and no listen_address)";
}

/** The base URL of the admin API over TCP, e.g. `http://127.0.0.1:8774`. */
export function adminBaseUrl(endpoint: AdminEndpoint): string {
  const host = endpoint.address.includes(":") ? `[${endpoint.address}]` : endpoint.address;
  return `http://${host}:${endpoint.port}`;
}

/** Options of one admin request. */
export interface AdminRequestInit {
  /** HTTP method; default GET. */
  method?: string;
  /** Request body. */
  body?: string;
  /** Request headers. */
  headers?: Record<string, string>;
  /** Aborts the request (and the unix-socket attempt before TCP). */
  signal?: AbortSignal;
}

/**
 * Sends one request to the admin API: over the unix socket when one is
 * configured, falling back to TCP (with the token from `tokenFile`, when
 * the TCP listener is on) when the socket cannot be reached (absent,
 * refused, or not allowed by the permission set) or does not answer within
 * the endpoint's socketTimeoutMs. An HTTP answer of any status is returned
 * as is; an abort is thrown as is.
 */
export function adminRequest(
  endpoint: AdminEndpoint,
  path: string,
  init: AdminRequestInit = {},
): Promise<Response> {
  const url = `${adminBaseUrl(endpoint)}${path}`;
  return overSocketThenTcp(endpoint, init, async (target, headers, signal) => {
    const request: RequestInit = {
      method: init.method ?? "GET",
      headers,
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(signal ? { signal } : {}),
    };
    if (target.transport === "tcp") return await fetch(url, request);
    let client: Deno.HttpClient | null = null;
    try {
      client = Deno.createHttpClient({ proxy: { transport: "unix", path: target.path } });
      // The URL names the TCP address too, so the permission set needs no
      // extra host; the connection goes to the socket.
      const response = await fetch(url, { ...request, client });
      const body = await response.arrayBuffer();
      return new Response(body, { status: response.status, headers: response.headers });
    } finally {
      client?.close();
    }
  });
}

/**
 * adminRequest() without fetch: the same socket-then-TCP rule, the answer
 * as a plain object (http1.ts). For the libvirt hook, whose whole process
 * is a few tens of milliseconds: fetch's start-up alone would add a third.
 */
export function adminExchange(
  endpoint: AdminEndpoint,
  path: string,
  init: AdminRequestInit = {},
): Promise<Http1Answer> {
  // The Host fetch would send: the TCP address, over the socket too.
  const host = adminBaseUrl(endpoint).slice("http://".length);
  return overSocketThenTcp(endpoint, init, (target, headers, signal) =>
    http1Request(target, {
      method: init.method ?? "GET",
      path,
      host,
      headers,
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(signal ? { signal } : {}),
    }));
}

/** Sends over the socket, then over TCP when the socket fails and the TCP listener is on (the rule of adminRequest). */
async function overSocketThenTcp<T>(
  endpoint: AdminEndpoint,
  init: AdminRequestInit,
  send: (target: Http1Target, headers: Record<string, string>, signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (endpoint.socket !== null) {
    // A socket that accepts but never answers (a hung server, a stale
    // listener) gets its own part of the budget, then TCP is tried.
    // Without a TCP listener to fall back to, the socket has the whole budget.
    const socketBudget = endpoint.tcp ? AbortSignal.timeout(endpoint.socketTimeoutMs) : null;
    const signals = [init.signal, socketBudget].filter((signal) => signal !== null && signal !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    try {
      return await send({ transport: "unix", path: endpoint.socket }, init.headers ?? {}, signal);
    } catch (error) {
      if (init.signal?.aborted || !endpoint.tcp) throw error;
      // Fall through to TCP.
    }
  }
  if (!endpoint.tcp) throw new Error(`no admin API to reach: ${adminLocation(endpoint)}`);
  const token = await readToken(endpoint.tokenFile);
  const headers = token === null ? init.headers ?? {} : { ...init.headers, authorization: `Bearer ${token}` };
  return await send({ transport: "tcp", hostname: endpoint.address, port: endpoint.port }, headers, init.signal);
}

/** The token of a token file, or null when it cannot be read (the request then gets a 401). */
async function readToken(file: string): Promise<string | null> {
  try {
    return (await Deno.readTextFile(file)).trim() || null;
  } catch {
    return null;
  }
}

/** Reads the configuration file, with a message naming it. */
async function readConfigText(
  file: string,
  fs: EndpointFileSystem,
): Promise<string> {
  try {
    return await fs.readTextFile(file);
  } catch (error) {
    throw new Error(
      `cannot read configuration "${file}": ${(error as Error).message}`,
    );
  }
}

async function ignoreMissing<T>(promise: Promise<T>): Promise<T | null> {
  try {
    return await promise;
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory
    ) return null;
    throw error;
  }
}

function unset(value: string | undefined): string | null {
  if (value === undefined) return null;
  const text = value.trim();
  return text === "" || text.toLowerCase() === "none" ? null : text;
}
