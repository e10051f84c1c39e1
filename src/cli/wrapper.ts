/**
 * The `mdserver` command: a small shell script that runs a checkout's
 * main.ts with the permission set of the subcommand (from the command
 * table), quietly (no Deno warnings). `install` writes it with the
 * checkout's and deno's paths; bin/mdserver is the same script finding
 * both itself, and the deno tasks run it. `install`/`install-hook` with
 * `--root DIR` or `--path P` get exactly that folder instead of the
 * system's (packaging and tests need no wider set).
 *
 * @module
 */

import { COMMANDS } from "./commands.ts";
import { shellQuote } from "../io/mod.ts";

/** Where install puts the command (under --root when given). */
export const WRAPPER_PATH = "/usr/local/bin/mdserver";

/** How the script finds the checkout and deno: sh expressions. */
export interface WrapperPaths {
  /** The checkout, e.g. `'/opt/mdserver'` or `"$(cd "$(dirname "$0")/.." && pwd)"`. */
  app: string;
  /** deno, e.g. `'/usr/bin/deno'` or `"${DENO:-deno}"`. */
  deno: string;
}

/** The wrapper script of fixed paths (what install writes). */
export function installedWrapper(projectDir: string, denoPath: string): string {
  return wrapperScript({ app: shellQuote(projectDir.replace(/\/+$/, "")), deno: shellQuote(denoPath) });
}

/** The wrapper script. */
export function wrapperScript(paths: WrapperPaths): string {
  const cases = new Map<string, string[]>();
  for (const command of COMMANDS) {
    cases.set(command.permissionSet, [...cases.get(command.permissionSet) ?? [], command.name]);
  }
  return `#!/bin/sh
# mdserver: runs main.ts with the permission set of each command (generated from src/cli/commands.ts).
app=${paths.app}
deno=${paths.deno}
cmd="$1"
if [ "$cmd" = ctl ]; then cmd="$2"; fi
case "$cmd" in
${[...cases].map(([set, names]) => `  ${names.join("|")}) set=${set} ;;`).join("\n")}
  */*|*.conf) set=serve ;;
  *) set=check ;;
esac
perms="-P=$set"
if [ "$set" = install ]; then
  # --root DIR / --path P: exactly that folder, not the system's.
  target=""
  prev=""
  for arg in "$@"; do
    case "$prev" in --root) target="$arg" ;; --path) target="$(dirname "$arg")" ;; esac
    case "$arg" in --root=*) target="\${arg#*=}" ;; --path=*) target="$(dirname "\${arg#*=}")" ;; esac
    prev="$arg"
  done
  if [ -n "$target" ]; then
    case "$target" in /*) ;; *) target="\${INIT_CWD:-$PWD}/$target" ;; esac
    perms="--allow-read=$app,$target --allow-write=$target --allow-env=DENO_DIR,MDSERVER_CONFIG --allow-run=systemctl"
  fi
fi
exec "$deno" run --quiet --no-prompt --config "$app/deno.json" $perms "$app/main.ts" "$@"
`;
}
