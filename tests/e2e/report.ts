/**
 * The end-to-end report: every phase (timed) and every check, printed as a
 * table and written as JSON.
 *
 * @module
 */

/** Outcome of one step. */
export type StepStatus = "pass" | "fail" | "not run";

/** One phase or check. */
export interface Step {
  /** "setup", or the guest run ("nocloud", "ec2"). */
  run: string;
  name: string;
  status: StepStatus;
  /** Duration of a phase; null for a check. */
  seconds: number | null;
  detail: string;
}

/** Collects steps in order. */
export class Report {
  readonly steps: Step[] = [];
  readonly facts: Record<string, unknown> = {};

  /** Times fn as a phase; a throw is recorded as a failure and rethrown. */
  async phase<T>(run: string, name: string, fn: () => Promise<T>, detail?: (value: T) => string): Promise<T> {
    const started = performance.now();
    try {
      const value = await fn();
      this.add({ run, name, status: "pass", seconds: elapsed(started), detail: detail?.(value) ?? "" });
      return value;
    } catch (error) {
      this.add({ run, name, status: "fail", seconds: elapsed(started), detail: message(error) });
      throw new ReportedError(error);
    }
  }

  /** Records a timed phase measured elsewhere. */
  timed(run: string, name: string, seconds: number | null, ok: boolean, detail: string): void {
    this.add({ run, name, status: ok ? "pass" : "fail", seconds, detail });
  }

  /** Records a check. */
  check(run: string, name: string, ok: boolean, detail: string): boolean {
    this.add({ run, name, status: ok ? "pass" : "fail", seconds: null, detail });
    return ok;
  }

  /** Records a step that could not run, and why. */
  notRun(run: string, name: string, detail: string): void {
    this.add({ run, name, status: "not run", seconds: null, detail });
  }

  /** Adds a step. */
  add(step: Step): void {
    this.steps.push(step);
  }

  /** Orders the steps by run (in the order runs first appear), keeping each run's own order. */
  groupByRun(): void {
    const order = [...new Set(this.steps.map((step) => step.run))];
    const grouped = order.flatMap((run) => this.steps.filter((step) => step.run === run));
    this.steps.splice(0, this.steps.length, ...grouped);
  }

  /** True when there were steps and none failed or was skipped. */
  get ok(): boolean {
    return this.steps.length > 0 && this.steps.every((step) => step.status === "pass");
  }

  /** The report as a plain-text table. */
  table(): string {
    const rows = this.steps.map((step) => [
      step.run,
      step.name,
      step.status === "pass" ? "PASS" : step.status === "fail" ? "FAIL" : "NOT RUN",
      step.seconds === null ? "" : step.seconds.toFixed(1),
      step.detail.replace(/\s+/g, " "),
    ]);
    const header = ["run", "step", "result", "seconds", "detail"];
    const widths = header.map((title, column) =>
      Math.min(column === 4 ? 110 : 60, Math.max(title.length, ...rows.map((row) => row[column]!.length)))
    );
    const line = (cells: string[]) =>
      cells.map((cell, column) => {
        const width = widths[column]!;
        const text = cell.length > width ? cell.slice(0, width - 1) + "…" : cell;
        return column === 3 ? text.padStart(width) : text.padEnd(width);
      }).join("  ").trimEnd();
    return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
  }

  /** The report as JSON. */
  json(): Record<string, unknown> {
    const phases: Record<string, number> = {};
    for (const step of this.steps) {
      if (step.seconds !== null) phases[`${step.run}: ${step.name}`] = Number(step.seconds.toFixed(2));
    }
    return { ok: this.ok, ...this.facts, phases, steps: this.steps };
  }
}

/** An error already recorded in the report: callers stop without recording it again. */
export class ReportedError extends Error {
  constructor(cause: unknown) {
    super(message(cause));
    this.name = "ReportedError";
  }
}

/** The message of an error-like value. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function elapsed(started: number): number {
  return (performance.now() - started) / 1000;
}
