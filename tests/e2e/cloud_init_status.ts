/**
 * Judging `cloud-init status` as read from inside a guest: done, with no
 * errors and no recoverable errors. Both output formats are handled: 22.4
 * (Debian bookworm) knows only `status` and `errors`; 23.4 and later
 * (Debian trixie's 25.1) add `extended_status` ("degraded done" when a
 * warning or deprecation was logged) and `recoverable_errors` (lists per
 * log level), and `cloud-init status --wait` exits 2 for a degraded boot.
 *
 * @module
 */

/** What a guest's `cloud-init status` said, and whether that is a clean finish. */
export interface CloudInitVerdict {
  ok: boolean;
  /** `status`, or `extended_status` where the version has it. */
  status: string;
  /** Everything that made the boot not clean (empty when ok). */
  problems: string[];
  /** Recoverable errors per level (WARNING, DEPRECATED…), empty on 22.4. */
  recoverable: Record<string, string[]>;
}

/**
 * Judges `cloud-init status --format json` and the exit code of
 * `cloud-init status --wait`.
 */
export function judgeCloudInitStatus(json: string, waitExit: number): CloudInitVerdict {
  let parsed: Record<string, unknown>;
  try {
    const value = JSON.parse(json);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    parsed = value as Record<string, unknown>;
  } catch (error) {
    return {
      ok: false,
      status: "unreadable",
      problems: [`cloud-init status --format json is not a JSON object: ${(error as Error).message}`],
      recoverable: {},
    };
  }
  const problems: string[] = [];
  const status = typeof parsed.status === "string" ? parsed.status : String(parsed.status);
  const extended = typeof parsed.extended_status === "string" ? parsed.extended_status : null;
  if (status !== "done") problems.push(`status ${status}`);
  if (extended !== null && extended !== "done") problems.push(`extended_status ${extended}`);
  const errors = Array.isArray(parsed.errors) ? parsed.errors.map(String) : [];
  if (errors.length > 0) problems.push(`errors: ${errors.join("; ")}`);
  const recoverable: Record<string, string[]> = {};
  const raw = parsed.recoverable_errors;
  if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) {
    for (const [level, messages] of Object.entries(raw)) {
      const list = Array.isArray(messages) ? messages.map(String) : [String(messages)];
      if (list.length > 0) recoverable[level] = list;
    }
  }
  for (const [level, list] of Object.entries(recoverable)) {
    problems.push(`recoverable ${level}: ${list.join("; ")}`);
  }
  if (waitExit !== 0) problems.push(`cloud-init status --wait exited ${waitExit}`);
  return { ok: problems.length === 0, status: extended ?? status, problems, recoverable };
}
