/**
 * `main.ts install [--root DIR] [--force]`: puts mdserver on a host. The
 * application runs in place from this checkout; install writes
 *
 * - /etc/mdserver/mdserver.conf and /etc/mdserver/userdata/base.yaml (only
 *   if absent: an operator's files are never overwritten),
 * - /etc/mdserver/mds-network.xml (the libvirt network to define),
 * - /etc/mdserver/admin.token (only if absent): the admin TCP listener's
 *   token, mode 0600, root's; the unit hands the service a copy,
 * - /etc/systemd/system/: mdserver.service (with this checkout's and deno's
 *   absolute paths), mdserver-dnsmasq.service and the .path/.service pair
 *   that restarts it when mdserver asks,
 * - /etc/libvirt/hooks/qemu (src/hook_install.ts; a foreign hook is refused
 *   unless --force),
 * - /usr/local/bin/mdserver (wrapper.ts: the command, each subcommand under
 *   its permission set).
 *
 * With the real root it also creates the `mdserver` system user, caches the
 * npm packages in `<checkout>/.deno` (the unit runs `--cached-only`),
 * reloads systemd and enables mdserver.service and the restart .path unit
 * (which starts dnsmasq's unit once mdserver has written its files). With
 * `--root DIR` (packaging, tests) it writes files and enables the units
 * with `systemctl --root DIR` when it can run programs.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { installHook } from "../hook/install.ts";
import { writeFileAtomic } from "../io/files.ts";
import { installedWrapper, WRAPPER_PATH } from "./wrapper.ts";

/** What install needs to know and do. */
export interface InstallOptions {
  /** The checkout (absolute): holds main.ts, deno.json, config/, systemd/. */
  projectDir: string;
  /** Absolute path of deno. */
  denoPath: string;
  /** Install under this folder instead of /. */
  root: string | null;
  /** Replace files mdserver did not write. */
  force: boolean;
  /** Writes one line of output. */
  print(line: string): void;
  /** Runs a command on the real root; tests never reach it. */
  run?: (command: string, args: string[], env?: Record<string, string>) => Promise<number>;
}

/** Installs; returns the exit code. */
export async function install(options: InstallOptions): Promise<number> {
  const root = options.root ? options.root.replace(/\/+$/, "") : "";
  const at = (path: string) => `${root}${path}`;
  const project = (path: string) => join(options.projectDir, path);

  // The hook first: a foreign hook in the way stops the install before
  // anything is written.
  const hook = await installHook({
    projectDir: options.projectDir,
    denoPath: options.denoPath,
    root: root || null,
    force: options.force,
    denoDir: join(options.projectDir, ".deno"),
  });
  options.print(`${hook.action}: ${hook.path}: ${hook.kind === "binary" ? "compiled hook" : "hook wrapper"}`);
  for (const note of hook.notes) options.print(`note: ${note}`);

  await placeOnce(project("config/mdserver.conf"), at("/etc/mdserver/mdserver.conf"), options.print);
  await placeOnce(project("config/userdata/base.yaml"), at("/etc/mdserver/userdata/base.yaml"), options.print);
  await place(await Deno.readTextFile(project("config/mds-network.xml")), at("/etc/mdserver/mds-network.xml"));
  options.print(`written: ${at("/etc/mdserver/mds-network.xml")}`);

  await placeToken(at("/etc/mdserver/admin.token"), options.print);

  for (const name of UNITS) {
    const unit = (await Deno.readTextFile(project(`systemd/${name}`)))
      .replaceAll("@DENO@", options.denoPath)
      .replaceAll("@APP@", options.projectDir.replace(/\/+$/, ""));
    await place(unit, at(`/etc/systemd/system/${name}`));
    options.print(`written: ${at(`/etc/systemd/system/${name}`)}`);
  }

  if (root !== "" && options.run) {
    await mustRun(options.run, "systemctl", [`--root=${root}`, "--quiet", "enable", ...ENABLED_UNITS]);
    options.print(`enabled: ${ENABLED_UNITS.join(" ")}`);
  }
  await place(installedWrapper(options.projectDir, options.denoPath), at(WRAPPER_PATH));
  await Deno.chmod(at(WRAPPER_PATH), 0o755);
  options.print(`written: ${at(WRAPPER_PATH)}: the mdserver command`);

  if (root === "" && options.run) {
    const run = options.run;
    if (await run("id", ["-u", "mdserver"]) !== 0) {
      await mustRun(run, "useradd", [
        "--system",
        "--home-dir",
        "/var/lib/mdserver",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        "mdserver",
      ]);
      options.print("created: system user mdserver");
    }
    await mustRun(run, "deno", ["cache", "--frozen", project("main.ts"), project("hook.ts")], {
      DENO_DIR: project(".deno"),
    });
    options.print(`cached: npm packages in ${project(".deno")}`);
    await run("systemctl", ["daemon-reload"]);
    await mustRun(run, "systemctl", ["enable", ...ENABLED_UNITS]);
    options.print(`enabled: ${ENABLED_UNITS.join(" ")}`);
  }
  options.print(
    [
      "next:",
      `  edit ${at("/etc/mdserver/mdserver.conf")} ([public-keys], [dnsmasq]) and check it:`,
      `    mdserver check-config`,
      `  virsh net-define ${at("/etc/mdserver/mds-network.xml")} && virsh net-autostart mds && virsh net-start mds`,
      "  systemctl start mdserver-dnsmasq-restart.path mdserver",
    ].join("\n"),
  );
  return 0;
}

/** The unit files install writes to /etc/systemd/system. */
export const UNITS = [
  "mdserver.service",
  "mdserver-dnsmasq.service",
  "mdserver-dnsmasq-restart.path",
  "mdserver-dnsmasq-restart.service",
];

/** The units install enables: the service, and the .path unit that starts and restarts dnsmasq's unit. */
export const ENABLED_UNITS = ["mdserver.service", "mdserver-dnsmasq-restart.path"];

/** Writes a new random token, mode 0600 (root's when install runs as root), unless one is there. */
async function placeToken(target: string, print: (line: string) => void) {
  try {
    await Deno.lstat(target);
    print(`kept: ${target} (exists)`);
    return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  await Deno.mkdir(dirname(target), { recursive: true });
  await writeFileAtomic(target, `${token}\n`, { mode: 0o600 });
  print(`written: ${target} (mode 0600)`);
}

async function mustRun(
  run: NonNullable<InstallOptions["run"]>,
  command: string,
  args: string[],
  env?: Record<string, string>,
) {
  const code = await run(command, args, env);
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} failed with exit status ${code}`);
}

async function placeOnce(source: string, target: string, print: (line: string) => void) {
  try {
    await Deno.lstat(target);
    print(`kept: ${target} (exists)`);
    return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await place(await Deno.readTextFile(source), target);
  print(`written: ${target}`);
}

/** Writes a file atomically, creating its folder. */
async function place(text: string, target: string) {
  await Deno.mkdir(dirname(target), { recursive: true });
  await writeFileAtomic(target, text);
}

/** Runs a program, inheriting output; returns its exit code. */
export async function runProgram(command: string, args: string[], env?: Record<string, string>): Promise<number> {
  const child = new Deno.Command(command, {
    args,
    stdout: "inherit",
    stderr: "inherit",
    ...(env ? { env } : {}),
  });
  return (await child.output()).code;
}
