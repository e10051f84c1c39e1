/**
 * The e2e's command line:
 *
 *   deno task e2e [--accel auto|kvm|tcg] [--only FILTER[,FILTER…]] [--boot-timeout SECONDS] [--jobs N]
 *                 [--hook qemu|qemu.d] [--no-ipv6]
 *
 * A filter is a suite (bookworm, trixie), a datasource (nocloud, ec2) or
 * one guest (trixie-ec2).
 *
 * @module
 */

import { DEFAULT_RUNS, type GuestRun, KINDS, SUITES } from "./settings.ts";

/** Command line options. */
export interface Options {
  accel: "auto" | "kvm" | "tcg";
  /** The guests, in the order they boot. */
  runs: GuestRun[];
  /** Per boot; null for the default (600 s under TCG, 180 s under KVM). */
  bootTimeoutS: number | null;
  /** How many guests go through their boots at the same time. */
  jobs: number;
  /**
   * Where mdserver's hook goes: "qemu", as install writes it, or "qemu.d":
   * beside a host's own qemu hook (`install-hook --path …/qemu.d/mdserver`).
   */
  hook: "qemu" | "qemu.d";
  /** --no-ipv6: the network without its IPv6 side (`ipv6_prefix = no`), to measure what it saves. */
  ipv6: boolean;
}

/** The usage line. */
export const USAGE =
  "usage: deno task e2e [--accel auto|kvm|tcg] [--only bookworm|trixie|nocloud|ec2|configdrive|SUITE-KIND[,…]] " +
  "[--boot-timeout SECONDS] [--jobs N] [--hook qemu|qemu.d] [--no-ipv6]";

/**
 * Every guest. Ordered by datasource, bookworm then trixie: with --jobs 2
 * the two suites of a datasource boot side by side, so that trixie's boot
 * time is compared with a bookworm boot under the same load.
 */
export function allRuns(): GuestRun[] {
  return KINDS.flatMap((kind) => SUITES.map((suite) => ({ suite, kind, label: `${suite}-${kind}` })));
}

/** Parses the arguments; throws a TypeError naming a bad one. */
export function parseOptions(args: string[]): Options {
  const runs = DEFAULT_RUNS.map((label) => allRuns().find((run) => run.label === label)!);
  const options: Options = { accel: "auto", runs, bootTimeoutS: null, jobs: 2, hook: "qemu", ipv6: true };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const next = inline ?? args[++i];
      if (next === undefined) throw new TypeError(`${name} needs a value`);
      return next;
    };
    if (name === "--accel") {
      const accel = value();
      if (accel !== "auto" && accel !== "kvm" && accel !== "tcg") throw new TypeError(`--accel "${accel}"`);
      options.accel = accel;
    } else if (name === "--only") {
      const filters = value().split(",").map((filter) => filter.trim()).filter(Boolean);
      const known = new Set<string>([...SUITES, ...KINDS, ...allRuns().map((run) => run.label)]);
      const unknown = filters.filter((filter) => !known.has(filter));
      if (filters.length === 0 || unknown.length > 0) throw new TypeError(`--only "${unknown.join(",")}"`);
      options.runs = allRuns().filter((run) =>
        filters.some((filter) => filter === run.suite || filter === run.kind || filter === run.label)
      );
    } else if (name === "--boot-timeout") {
      const seconds = Number(value());
      if (!(seconds > 0)) throw new TypeError(`--boot-timeout needs a number of seconds`);
      options.bootTimeoutS = seconds;
    } else if (name === "--jobs") {
      const jobs = Number(value());
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 4) throw new TypeError(`--jobs needs 1 to 4`);
      options.jobs = jobs;
    } else if (name === "--hook") {
      const hook = value();
      if (hook !== "qemu" && hook !== "qemu.d") throw new TypeError(`--hook "${hook}": qemu or qemu.d`);
      options.hook = hook;
    } else if (name === "--libvirt" && inline === undefined) {
      // The former switch: real libvirt is the only mode now.
    } else if (name === "--no-ipv6" && inline === undefined) {
      options.ipv6 = false;
    } else {
      throw new TypeError(`unknown argument "${arg}"`);
    }
  }
  return options;
}
