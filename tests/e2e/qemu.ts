/**
 * The guest's virtual machine: choosing KVM or TCG, and the per-run disk
 * over the cached image.
 *
 * @module
 */

import { mustRun, runCommand, sleep } from "./process.ts";

/** The accelerator and why it was chosen. */
export interface AccelChoice {
  accel: "kvm" | "tcg";
  reason: string;
}

/**
 * KVM when it really works, else TCG. `/dev/kvm` existing is not enough
 * (on nested cloud machines it exists while the CPU exposes neither VMX
 * nor SVM, and a KVM boot hangs in the firmware), so: the CPU flags must
 * show vmx or svm, and a probe boot of the guest kernel under KVM must print
 * its banner within probeMs.
 */
export async function chooseAccel(
  wanted: "auto" | "kvm" | "tcg",
  probe: { kernel: string; workDir: string; probeMs?: number },
): Promise<AccelChoice> {
  if (wanted !== "auto") return { accel: wanted, reason: "chosen with --accel" };
  // Deno asks for --allow-all to read /proc/cpuinfo itself; grep may.
  const flags = await runCommand("grep", ["-m1", "-owE", "vmx|svm", "/proc/cpuinfo"]);
  if (flags.stdout.trim() === "") {
    return { accel: "tcg", reason: "the CPU exposes neither vmx nor svm (/proc/cpuinfo); KVM cannot run guests here" };
  }
  const log = `${probe.workDir}/kvm-probe.log`;
  const probeMs = probe.probeMs ?? 20_000;
  const child = new Deno.Command("qemu-system-x86_64", {
    args: [
      "-accel",
      "kvm",
      "-cpu",
      "host",
      "-m",
      "256",
      "-display",
      "none",
      "-monitor",
      "none",
      "-no-reboot",
      "-nic",
      "none",
      "-serial",
      `file:${log}`,
      "-kernel",
      probe.kernel,
      "-append",
      "console=ttyS0 panic=-1",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let booted = false;
  const deadline = performance.now() + probeMs;
  let exited = false;
  child.status.then(() => exited = true);
  while (performance.now() < deadline && !exited) {
    const text = await Deno.readTextFile(log).catch(() => "");
    if (text.includes("Linux version")) {
      booted = true;
      break;
    }
    await sleep(200);
  }
  try {
    child.kill("SIGKILL");
  } catch {
    // Already exited.
  }
  await child.status;
  if (booted) return { accel: "kvm", reason: "vmx/svm present and a KVM probe boot reached the kernel" };
  const why = exited ? `qemu exited: ${(await stderr).trim().split("\n")[0]}` : `no kernel banner in ${probeMs} ms`;
  return { accel: "tcg", reason: `a KVM probe boot failed (${why})` };
}

/** A copy-on-write overlay over the cached base image: the base stays pristine. */
export async function overlayDisk(base: string, path: string): Promise<void> {
  await mustRun("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, path]);
}

/**
 * A private copy of the base image with extra files written into it by
 * debugfs (no mounts, no loop devices): what an operator does with
 * virt-customize to set one cloud-init option in an image.
 */
export async function customizedDisk(
  base: string,
  path: string,
  files: { path: string; content: string }[],
  scratchDir: string,
): Promise<void> {
  await mustRun("cp", ["--sparse=always", base, path]);
  const commands: string[] = [];
  for (const [index, file] of files.entries()) {
    const local = `${scratchDir}/debugfs-${index}`;
    await Deno.writeTextFile(local, file.content, { mode: 0o644 });
    await Deno.chmod(local, 0o644);
    const slash = file.path.lastIndexOf("/");
    commands.push(`cd ${file.path.slice(0, slash) || "/"}`, `rm ${file.path.slice(slash + 1)}`);
    commands.push(`write ${local} ${file.path.slice(slash + 1)}`);
  }
  const script = `${scratchDir}/debugfs-commands`;
  await Deno.writeTextFile(script, commands.join("\n") + "\n");
  const result = await runCommand("debugfs", ["-w", "-f", script, path]);
  // debugfs exits 0 even when a command fails: check what it said.
  const failed = result.stderr.split("\n").filter((line) =>
    /error|not found|cannot|failed/i.test(line) && !/rm: File not found/i.test(line) &&
    !/^debugfs \d/.test(line)
  );
  if (result.code !== 0 || failed.length > 0) {
    throw new Error(`debugfs on ${path} failed: ${failed.join("; ") || result.stderr.trim()}`);
  }
  for (const file of files) {
    const check = await runCommand("debugfs", ["-R", `cat ${file.path}`, path]);
    if (check.stdout !== file.content) throw new Error(`debugfs did not write ${file.path} into ${path}`);
  }
}
