#!/usr/bin/env -S deno run -q -P=hook
/**
 * The libvirt qemu hook: libvirt runs it as
 * `qemu <domain> <operation> <sub-operation> <extra>` with the domain XML on
 * standard input (see https://libvirt.org/hooks.html).
 *
 * - `prepare begin`, `migrate begin`, `restore begin`: uploads the XML to
 *   the admin API (`POST /v1/instances`), so the domain has an address and a
 *   DHCP reservation before the guest asks for one.
 * - `release end`: reports the stop (`POST /v1/instances/<name>/stopped`);
 *   the instance keeps its address.
 * - anything else: exits 0 at once, touching neither stdin nor the network.
 *
 * It never fails or holds up a domain start: everything, from process start
 * to answer, fits in HOOK_BUDGET_MS; on any failure it writes one line to
 * stderr naming the domain and the reason, and exits 0. It writes nothing to
 * stdout: for `migrate` and `restore` libvirt would take that as a
 * replacement domain XML. The admin endpoint comes from the configuration
 * file (MDSERVER_CONFIG, else /etc/mdserver/mdserver.conf).
 *
 * @module
 */

import { main } from "./src/hook/run.ts";

export { HOOK_BUDGET_MS, type HookAction, hookAction, type HookDeps, MAX_XML_BYTES, runHook } from "./src/hook/run.ts";

if (import.meta.main) await main();
