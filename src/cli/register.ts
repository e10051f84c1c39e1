/**
 * `mdserver register DOMAIN… [--connect URI]`: registers defined domains
 * before their first start, as the hook would at `prepare begin` but
 * without starting a boot: each gets its address, instance-id and DHCP
 * reservation now, so that `mdserver password` (and anything else asked of
 * an instance) can be done before the guest first boots — cloud-init sets
 * passwords once per instance, at its first boot. The domain's XML comes
 * from `virsh dumpxml`; the admin API's `POST /v1/instances?start=no`
 * takes it. The hook's upload at the start that follows is the start.
 *
 * @module
 */

import { callAdmin } from "./admin_client.ts";
import { UsageError } from "./args.ts";
import { findCommand } from "./commands.ts";
import type { CtlDeps, CtlLine } from "./ctl.ts";
import { runCommand } from "./gc.ts";
import { formatTable } from "./ctl.ts";

/** Runs `register DOMAIN… [--connect URI]`; returns the exit code. */
export async function runRegister(line: CtlLine, deps: CtlDeps): Promise<number> {
  const domains = line.args.slice(1);
  if (domains.length === 0) throw new UsageError("register needs DOMAIN", findCommand("register") ?? null);
  const connect = line.options.get("connect");
  const readXml = deps.domainXml ??
    ((domain: string, uri: string | null) =>
      runCommand("virsh", [...(uri ? ["--connect", uri] : []), "dumpxml", domain]));
  // Every domain's XML first: a name virsh does not know registers nothing.
  const documents: string[] = [];
  for (const domain of domains) documents.push(await readXml(domain, typeof connect === "string" ? connect : null));
  const rows = [["NAME", "IPV4", "INSTANCE-ID", "UUID", "CONFIG-DRIVE"]];
  for (const [i, xml] of documents.entries()) {
    const answer = await (await callAdmin({
      configFile: deps.configFile,
      method: "POST",
      path: "/v1/instances?start=no",
      xml,
      subject: `domain "${domains[i]}"`,
      ...(deps.readEndpoint ? { readEndpoint: deps.readEndpoint } : {}),
    })).json() as Record<string, unknown>;
    rows.push([
      String(answer.name),
      String(answer.ipv4),
      String(answer.instance_id),
      String(answer.uuid),
      typeof answer.config_drive === "string" ? answer.config_drive : "-",
    ]);
  }
  deps.print(formatTable(rows));
  return 0;
}
