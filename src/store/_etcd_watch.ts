/**
 * Following a prefix on etcd: list it at one revision, then watch from the
 * next revision, so no change falls between the two; when the watch stream
 * ends (its member stopped, a compaction, a network failure) the listener
 * hears `lost`, and after a short pause the prefix is listed again (the
 * listener gets the differences as a new snapshot) and watched again,
 * moving on to the next endpoint — until the signal aborts.
 *
 * @module
 */

import type { FollowListener, StoreEntry } from "./backend.ts";
import type { EtcdClient, EtcdHeader, EtcdKv } from "./_etcd_client.ts";
import { toBase64 } from "./_etcd_keys.ts";

/** What following a prefix needs. */
export interface FollowOptions {
  /** The cluster. */
  client: EtcdClient;
  /** The etcd range of the prefix. */
  range: { key: string; rangeEnd: string };
  /** Lists the prefix: its entries and the revision read at. */
  list: () => Promise<{ entries: StoreEntry[]; revision: string }>;
  /** A watched key-value pair as a store entry. */
  decode: (kv: EtcdKv) => StoreEntry;
  /** Who hears of it. */
  listener: FollowListener;
  /** Ends the following. */
  signal: AbortSignal;
}

interface WatchMessage {
  result?: {
    header?: EtcdHeader;
    created?: boolean;
    canceled?: boolean;
    compact_revision?: string;
    cancel_reason?: string;
    events?: { type?: string; kv: EtcdKv }[];
  };
  error?: { message?: string };
}

const PAUSE_MS = [100, 250, 500, 1_000, 2_000];

/** Lists and watches; resolves after the first snapshot (rejects when it cannot be read), then follows behind. */
export async function followPrefix(options: FollowOptions): Promise<void> {
  const { listener, signal } = options;
  const first = await options.list();
  listener.snapshot(first.entries, first.revision);
  void (async () => {
    let revision = first.revision;
    let endpoint = -1;
    for (let failures = 0; !signal.aborted;) {
      try {
        const outcome = await watchFrom(options, revision, endpoint);
        endpoint = outcome.endpoint;
        revision = outcome.revision;
        throw new Error(outcome.reason);
      } catch (error) {
        if (signal.aborted) return;
        listener.lost(error);
      }
      endpoint++;
      await pause(PAUSE_MS[Math.min(failures++, PAUSE_MS.length - 1)]!, signal);
      if (signal.aborted) return;
      try {
        const again = await options.list();
        listener.snapshot(again.entries, again.revision);
        revision = again.revision;
        failures = 0;
      } catch (error) {
        if (!signal.aborted) listener.lost(error);
      }
    }
  })();
}

/** Watches from after `revision` until the stream ends; says why and where it had got to. */
async function watchFrom(
  options: FollowOptions,
  revision: string,
  after: number,
): Promise<{ reason: string; revision: string; endpoint: number }> {
  const { client, range, listener, signal } = options;
  const body = {
    create_request: {
      key: toBase64(range.key),
      range_end: toBase64(range.rangeEnd),
      start_revision: String(Number(revision) + 1),
    },
  };
  const response = await client.openStream("/v3/watch", body, signal, after);
  let seen = revision;
  let buffer = "";
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return { reason: "the watch stream ended", revision: seen, endpoint: after };
      buffer += value;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line === "") continue;
        const message = JSON.parse(line) as WatchMessage;
        if (message.error) return { reason: `watch: ${message.error.message}`, revision: seen, endpoint: after };
        const result = message.result;
        if (!result) continue;
        if (result.canceled || result.compact_revision) {
          return { reason: `watch canceled: ${result.cancel_reason ?? "compacted"}`, revision: seen, endpoint: after };
        }
        for (const event of result.events ?? []) {
          const entry = options.decode(event.kv);
          const version = event.kv.mod_revision ?? result.header?.revision ?? seen;
          listener.change({ key: entry.key, value: event.type === "DELETE" ? null : entry.value, version });
          seen = version;
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
