/**
 * The admin API's view of boots (snake_case JSON):
 *
 * - GET /v1/boots[?after=V&wait=S]      every instance's current boot, with `version`;
 *   with `wait`, answers once something changed after version V, or after S seconds (at most 5
 *   here: a client asks again, and sees changes another process made to a shared store)
 * - GET /v1/boots/stream                NDJSON: a line per instance, then a line per change
 * - GET /v1/instances/<ref>/boots       the instance's boots, newest first
 *
 * @module
 */

import type { Boot, BootJournal, Instance, InstanceStore } from "../store/mod.ts";
import { HttpError, jsonResponse } from "./errors.ts";

/** What the routes need. */
export interface BootsAdminDeps {
  /** The instances, for names. */
  store: InstanceStore;
  /** Every instance's boots. */
  boots: BootJournal;
}

/** Largest `wait` taken, in seconds. */
const MAX_WAIT_S = 3600;
/** A stream sends an empty line this often, so a client that went away is noticed. */
const KEEPALIVE_MS = 15_000;
/** A long-poll re-reads this often, for changes another process made to a shared store. */
const REREAD_MS = 5_000;

/** A boot as the admin API shows it. */
export function bootJson(boot: Boot): Record<string, unknown> {
  return {
    seq: boot.seq,
    cause: boot.cause,
    state: boot.phase,
    opened_at: boot.openedAt,
    metadata_at: boot.metadataAt,
    user_data_at: boot.userDataAt,
    stages: Object.fromEntries(
      Object.entries(boot.stages).map(([stage, record]) => [stage, {
        started_at: record.startedAt,
        finished_at: record.finishedAt,
        result: record.result,
      }]),
    ),
    problem: boot.problem,
    ended_at: boot.endedAt,
    events: boot.events,
    dropped: boot.dropped,
    last_event: boot.lastEvent,
  };
}

/** One instance's line of the boots list and stream. */
function entryJson(instance: Instance, boot: Boot | undefined): Record<string, unknown> {
  return {
    name: instance.name,
    uuid: instance.uuid,
    ipv4: instance.ipv4,
    instance_state: instance.state,
    boot: boot === undefined ? null : bootJson(boot),
  };
}

async function currentBoots(deps: BootsAdminDeps): Promise<Record<string, unknown>[]> {
  const all = await deps.boots.all();
  const entries = [];
  for await (const instance of deps.store.list()) entries.push(entryJson(instance, all.get(instance.uuid)?.[0]));
  return entries;
}

/** The boots routes; null when the path is none of them. */
export async function bootsRoute(
  request: Request,
  url: URL,
  segments: string[],
  deps: BootsAdminDeps,
): Promise<Response | null> {
  if (segments[0] !== "v1") return null;
  if (segments[1] === "boots" && segments.length === 2) {
    requireGet(request);
    return await list(url, deps);
  }
  if (segments[1] === "boots" && segments[2] === "stream" && segments.length === 3) {
    requireGet(request);
    return stream(request, deps);
  }
  if (segments[1] === "instances" && segments.length === 4 && segments[3] === "boots") {
    requireGet(request);
    const instance = await deps.store.find(segments[2]!);
    if (instance === null) throw new HttpError(404, `no instance "${segments[2]}"`);
    return jsonResponse({
      name: instance.name,
      uuid: instance.uuid,
      boots: (await deps.boots.get(instance.uuid)).map(bootJson),
    });
  }
  return null;
}

function requireGet(request: Request): void {
  if (request.method !== "GET") throw new HttpError(405, `method ${request.method} not allowed here`, { allow: "GET" });
}

function number(url: URL, name: string, max: number): number | null {
  const text = url.searchParams.get(name);
  if (text === null) return null;
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || value > max) throw new HttpError(400, `${name} must be a number from 0 to ${max}`);
  return value;
}

async function list(url: URL, deps: BootsAdminDeps): Promise<Response> {
  const wait = number(url, "wait", MAX_WAIT_S);
  const after = number(url, "after", Number.MAX_SAFE_INTEGER) ?? -1;
  // Woken by this process's changes; answered after REREAD_MS at the latest, so that a client
  // sees another process's changes to a shared store too (it compares and asks again).
  if (wait !== null && wait > 0) await deps.boots.changed(after, Math.min(REREAD_MS, wait * 1000));
  return jsonResponse({ version: deps.boots.version, instances: await currentBoots(deps) });
}

/** NDJSON: every instance's current boot, then each change as it happens, until the client goes. */
function stream(request: Request, deps: BootsAdminDeps): Response {
  const encoder = new TextEncoder();
  let stop = () => {};
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (value: unknown) => {
        try {
          controller.enqueue(encoder.encode(`${JSON.stringify(value)}\n`));
        } catch {
          stop();
        }
      };
      for (const entry of await currentBoots(deps)) send(entry);
      const unsubscribe = deps.boots.subscribe((uuid, boot) => {
        deps.store.find(uuid).then((instance) => instance && send(entryJson(instance, boot)), () => {});
      });
      const keepalive = setInterval(() => send(null), KEEPALIVE_MS);
      const unClose = deps.boots.onClose(() => stop());
      stop = () => {
        stop = () => {};
        unsubscribe();
        unClose();
        clearInterval(keepalive);
        try {
          controller.close();
        } catch {
          // already closed by the client
        }
      };
      request.signal.addEventListener("abort", () => stop());
    },
    cancel() {
      stop();
    },
  });
  return new Response(body, { headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" } });
}
