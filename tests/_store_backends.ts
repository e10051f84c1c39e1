/**
 * The store's test suite on every backend: `backendSuite(name, cases)`
 * registers one test per backend (Deno KV, and etcd on a real three-member
 * cluster started for it), each case a step with a fresh, empty store
 * space. `open()` gives a new backend on the case's space; `openOther()` a
 * second one on the same space, standing for another process or host.
 *
 * @module
 */

import type { KeyValueBackend } from "../src/store/backend.ts";
import { DenoKvBackend } from "../src/store/kv_backend.ts";
import { EtcdBackend } from "../src/store/etcd_backend.ts";
import { requireEtcd, startEtcdCluster } from "./_etcd_cluster.ts";

/** What one case gets: backends on its own space. */
export interface BackendSpace {
  /** "kv" or "etcd". */
  name: string;
  /** The case's backend (opened once; closed after the case). */
  backend: KeyValueBackend;
  /** Another backend on the same data (another process or host); closed after the case. */
  openOther(): Promise<KeyValueBackend>;
}

/** One case of a suite. */
export interface BackendCase {
  /** What it shows. */
  name: string;
  /** The case itself. */
  body(space: BackendSpace): Promise<void>;
  /** Only on these backends (default all). */
  only?: string[];
  /** Whether the case opens others on its space (Deno KV then keeps it in a file, not in memory). */
  shared?: boolean;
}

/** Every key of a backend, for "changes nothing" assertions. */
export async function snapshotKeys(backend: KeyValueBackend): Promise<[string, unknown][]> {
  const entries: [string, unknown][] = [];
  for await (const entry of backend.list({ prefix: [] })) entries.push([JSON.stringify(entry.key), entry.value]);
  return entries;
}

/** Registers the cases as steps of one test per backend. */
export function backendSuite(suite: string, cases: BackendCase[]): void {
  Deno.test(`${suite} (Deno KV)`, async (t) => {
    for (const testCase of cases.filter((c) => !c.only || c.only.includes("kv"))) {
      await t.step(testCase.name, async () => {
        const dir = await Deno.makeTempDir({ prefix: "mdserver-kv-case-" });
        const opened: Deno.Kv[] = [];
        const open = async () => {
          const kv = await Deno.openKv(`${dir}/store.kv`);
          opened.push(kv);
          return new DenoKvBackend(kv);
        };
        try {
          // The case's own store in memory, unless others share it through a file.
          let backend: KeyValueBackend;
          if (testCase.shared) {
            backend = await open();
          } else {
            const memory = await Deno.openKv(":memory:");
            opened.push(memory);
            backend = new DenoKvBackend(memory);
          }
          await testCase.body({ name: "kv", backend, openOther: open });
        } finally {
          for (const kv of opened) kv.close();
          await Deno.remove(dir, { recursive: true });
        }
      });
    }
  });

  Deno.test(`${suite} (etcd, 3 members)`, async (t) => {
    if (await requireEtcd()) return;
    const cluster = await startEtcdCluster(3);
    try {
      for (const testCase of cases.filter((c) => !c.only || c.only.includes("etcd"))) {
        await t.step(testCase.name, async () => {
          const prefix = `/test-${crypto.randomUUID()}/`;
          const opened: KeyValueBackend[] = [];
          const open = () => {
            const backend = new EtcdBackend({ endpoints: cluster.endpoints, prefix, timeoutMs: 2_000 });
            opened.push(backend);
            return Promise.resolve(backend);
          };
          try {
            await testCase.body({ name: "etcd", backend: await open(), openOther: open });
          } finally {
            for (const backend of opened) backend.close();
          }
        });
      }
    } finally {
      await cluster.stop();
    }
  });
}
