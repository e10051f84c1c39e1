/**
 * Which etcd endpoints answer, for `check-config`: each member's status
 * (POST /v3/maintenance/status on the JSON gateway) within a timeout — its
 * etcd version, the leader it follows and the revision — and whether a
 * linearizable read goes through it (the cluster has quorum), or why not.
 *
 * @module
 */

/** What one endpoint said. */
export type EndpointProbe =
  | {
    endpoint: string;
    reachable: true;
    version: string;
    leader: string;
    member: string;
    revision: number;
    /** Why a linearizable read failed (no quorum), or null when it went through. */
    quorumProblem: string | null;
  }
  | { endpoint: string; reachable: false; reason: string };

interface StatusAnswer {
  header?: { member_id?: string; revision?: string };
  version?: string;
  leader?: string;
  error?: string;
  message?: string;
}

/** Asks every endpoint for its status at once; in the endpoints' order. */
export function probeEndpoints(endpoints: readonly string[], timeoutMs: number): Promise<EndpointProbe[]> {
  return Promise.all(endpoints.map((endpoint) => probe(endpoint, timeoutMs)));
}

async function probe(endpoint: string, timeoutMs: number): Promise<EndpointProbe> {
  try {
    const response = await fetch(`${endpoint}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const answer = await response.json() as StatusAnswer;
    if (!response.ok || answer.error) {
      return { endpoint, reachable: false, reason: answer.message ?? answer.error ?? `HTTP ${response.status}` };
    }
    const leader = answer.leader ?? "0";
    const read = await fetch(`${endpoint}/v3/kv/range`, {
      method: "POST",
      body: JSON.stringify({ key: btoa("mdserver-check") }),
      signal: AbortSignal.timeout(timeoutMs),
    }).then(async (reply) => {
      const body = await reply.json() as StatusAnswer;
      return reply.ok && !body.error ? null : body.message ?? body.error ?? `HTTP ${reply.status}`;
    }, (error) => error instanceof DOMException ? `no read within ${timeoutMs} ms` : (error as Error).message);
    return {
      endpoint,
      reachable: true,
      version: answer.version ?? "?",
      leader: leader === "0" ? "none" : leader,
      member: answer.header?.member_id ?? "?",
      revision: Number(answer.header?.revision ?? 0),
      quorumProblem: read,
    };
  } catch (error) {
    const reason = error instanceof DOMException && error.name === "TimeoutError"
      ? `no answer within ${timeoutMs} ms`
      : error instanceof Deno.errors.NotCapable
      ? `not allowed to connect (add its address to the permission set's net list in deno.json)`
      : (error as Error).message;
    return { endpoint, reachable: false, reason };
  }
}

/** One line per endpoint, as check-config prints them. */
export function formatProbe(probe: EndpointProbe): string {
  if (!probe.reachable) return `etcd ${probe.endpoint}: unreachable: ${probe.reason}`;
  const leader = probe.leader === "none" ? "no leader" : probe.leader === probe.member ? "leader" : "follower";
  const quorum = probe.quorumProblem === null ? "" : `; no quorum: ${probe.quorumProblem}`;
  return `etcd ${probe.endpoint}: reachable (etcd ${probe.version}, ${leader}, revision ${probe.revision}${quorum})`;
}
