/**
 * A real etcd cluster for tests: three members (Debian's etcd-server) on
 * free loopback ports, data and logs in a temporary folder, stopped and
 * removed by `stop()`. Members can be killed and started again (the rest
 * keep quorum with two of three). In CI a missing etcd fails the test;
 * elsewhere it is skipped with a reason (requireEtcd).
 *
 * @module
 */

import { join } from "node:path";
import { freePort } from "./_netns.ts";
import { requireTool } from "./_requirements.ts";

/** Where Debian's etcd-server puts the server. */
export const ETCD_BINARY = "/usr/bin/etcd";

/** null when etcd can be run here, else why not (throws in CI). */
export function requireEtcd(): Promise<string | null> {
  return requireTool("etcd (apt-get install etcd-server)", [ETCD_BINARY]);
}

interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: Deno.ChildProcess | null;
}

/** A running cluster. */
export interface EtcdCluster {
  /** Client URLs of every member, in order. */
  endpoints: string[];
  /** Kills a member (SIGKILL) and waits for it to exit. */
  kill(index: number): Promise<void>;
  /** Starts a killed member again, on its data, and waits until it answers. */
  restart(index: number): Promise<void>;
  /** Kills every member and removes the folder. */
  stop(): Promise<void>;
}

/** Starts a cluster of `size` members and waits until it has a leader and answers. */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const dir = await Deno.makeTempDir({ prefix: "mdserver-etcd-" });
  const token = `mdserver-test-${crypto.randomUUID()}`;
  const members: Member[] = Array.from({ length: size }, (_, index) => ({
    name: `m${index}`,
    clientUrl: `http://127.0.0.1:${freePort()}`,
    peerUrl: `http://127.0.0.1:${freePort()}`,
    dataDir: join(dir, `m${index}`),
    process: null,
  }));
  const initialCluster = members.map((member) => `${member.name}=${member.peerUrl}`).join(",");
  const spawn = (member: Member) => {
    member.process = new Deno.Command(ETCD_BINARY, {
      args: [
        `--name=${member.name}`,
        `--data-dir=${member.dataDir}`,
        `--listen-client-urls=${member.clientUrl}`,
        `--advertise-client-urls=${member.clientUrl}`,
        `--listen-peer-urls=${member.peerUrl}`,
        `--initial-advertise-peer-urls=${member.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${token}`,
        "--initial-cluster-state=new",
        "--heartbeat-interval=50",
        "--election-timeout=500",
        "--logger=zap",
        `--log-outputs=${join(dir, `${member.name}.log`)}`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  };
  const stop = async () => {
    for (const member of members) await killMember(member);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    members.forEach(spawn);
    await Promise.all(members.map((member) => waitUntilServing(member.clientUrl, 20_000)));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoints: members.map((member) => member.clientUrl),
    kill: (index) => killMember(members[index]!),
    restart: async (index) => {
      const member = members[index]!;
      if (member.process !== null) return;
      spawn(member);
      await waitUntilServing(member.clientUrl, 20_000);
    },
    stop,
  };
}

async function killMember(member: Member): Promise<void> {
  const process = member.process;
  if (process === null) return;
  member.process = null;
  try {
    process.kill("SIGKILL");
  } catch {
    // already exited
  }
  await process.status;
}

/** Waits until a member answers a linearizable read (so the cluster has a leader). */
async function waitUntilServing(clientUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${clientUrl}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: btoa("health") }),
        signal: AbortSignal.timeout(1_000),
      });
      const text = await response.text();
      if (response.ok && !text.includes('"error"')) return;
      last = text;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`etcd at ${clientUrl} did not answer within ${timeoutMs} ms: ${last}`);
}
