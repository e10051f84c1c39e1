/**
 * `mdserver watch` on a terminal, read as a person reads it: run in a tmux
 * pane 90 columns wide while two guests boot with cloud-init's own reporter
 * (one fails), the pane holds one header and one line per guest — redrawn
 * in place, never scrolling or wrapping — and ends showing each outcome.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { cloudInitClients, runDriver } from "./_cloudinit.ts";
import { startTestService, writeClientConfig } from "./_harness.ts";
import { requireTool } from "./_requirements.ts";

const clients = await cloudInitClients("DataSourceNoCloud");
const tmuxMissing = await requireTool("tmux (apt-get install tmux)", ["/usr/bin/tmux"]);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NETWORK = { address: "127.111.0.0", prefix: 16, gateway: "127.111.0.1" };
const GUESTS = [
  { name: "web01", uuid: "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d01", mac: "52:54:00:64:64:01" },
  { name: "db01", uuid: "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d02", mac: "52:54:00:64:64:02" },
];

async function tmux(...args: string[]): Promise<string> {
  const output = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(output.stdout);
}

Deno.test({
  name: "mdserver watch in a terminal redraws one line per guest in place until each boot has ended",
  ignore: clients[0]!.missing !== null || tmuxMissing !== null,
  async fn() {
    const t = await startTestService({ network: NETWORK });
    const session = `mdserver-watch-${Deno.pid}`;
    try {
      const config = await writeClientConfig(t);
      const ips = [];
      for (const guest of GUESTS) ips.push((await t.register(guest)).ipv4);
      const command = `cd ${ROOT} && ${Deno.execPath()} run -q -P=test main.ts watch --config ${config}`;
      await tmux("new-session", "-d", "-s", session, "-x", "90", "-y", "12", command);
      const pane = () => tmux("capture-pane", "-p", "-t", session);
      for (let i = 0; i < 100 && !(await pane()).includes("registered"); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const stages = ["init-network", "modules-config", "modules-final"];
      for (const stage of stages) {
        await Promise.all(ips.map((ip, index) =>
          runDriver(clients[0]!.client, "boot_events.py", [
            `${t.metadataUrl}/nocloud/`,
            ip,
            stage,
            ...(index === 1 ? ["apt_configure"] : []),
          ])
        ));
        await new Promise((resolve) => setTimeout(resolve, 1200));
      }
      let screen = "";
      for (let i = 0; i < 50 && !/2\/2 ended/.test(screen); i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        screen = await pane();
      }
      const lines = screen.split("\n").filter((line) => line.trim() !== "");
      assert.equal(lines.length, 3, `one header and a line per guest:\n${screen}`);
      assert.match(lines[0]!, /^mdserver watch {2}2\/2 ended {2}\S+Z$/);
      assert.match(
        lines[1]!,
        /^db01 {3}127\.111\.\d+\.\d+ +\[#######\] {2}failed +\d+\.\ds {2}modules-config\/config-apt…$/,
      );
      assert.match(lines[2]!, /^web01 {2}127\.111\.\d+\.\d+ +\[#######\] {2}done +\d+\.\ds$/);
      assert.ok(lines.every((line) => line.length < 90), "no line reaches the last column (none wraps)");
    } finally {
      await tmux("kill-session", "-t", session);
      await t.close();
    }
  },
});
