/**
 * The architecture, checked against the import graph that `deno info`
 * reports for main.ts and hook.ts: each part of src/ imports only its own
 * files and parts of a lower layer; the pure parts (renderers, IPAM, host
 * names, the XML reader) reach nothing that does I/O or knows HTTP; the hook
 * stays small; and every module of src/ is reachable (none is dead).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Layers, lowest first: a part may import parts of lower layers only. */
const LAYERS: Record<string, number> = {
  "io": 0,
  "log": 0,
  "ipam": 0,
  "http_server": 0,
  "config": 1,
  "domain": 1,
  "admin": 2,
  // Above config/: the templating code may use config/public_keys.ts.
  "user_data": 2,
  "store": 2,
  "guest_api": 3,
  "dnsmasq": 3,
  "http": 4,
  "service": 5,
  "seed": 6,
  "hook": 6,
  "cli": 7,
};

/**
 * Modules that must do no I/O and know no HTTP, with what they may reach:
 * these files and the listed npm packages and built-ins, nothing else.
 */
const PURE = [
  "src/ipam/",
  "src/domain/",
  "src/config/ini.ts",
  "src/config/config.ts",
  "src/config/schema.ts",
  "src/config/build.ts",
  "src/config/problems.ts",
  "src/config/format.ts",
  "src/config/files.ts",
  "src/config/public_keys.ts",
  "src/config/metadata_url.ts",
  "src/dnsmasq/render.ts",
  "src/guest_api/metadata/ec2.ts",
  "src/guest_api/metadata/openstack.ts",
  "src/guest_api/metadata/nocloud.ts",
  "src/guest_api/metadata/network_config.ts",
  "src/guest_api/metadata/tree.ts",
  "src/guest_api/template_data.ts",
  "src/guest_api/tokens.ts",
  "src/guest_api/errors.ts",
  "src/store/instance.ts",
  "src/store/boot_state.ts",
  "src/store/boot_machine.ts",
  "src/guest_api/guest_urls.ts",
  "src/user_data/start_type.ts",
  "src/user_data/cloud_config.ts",
  "src/user_data/_helpers.ts",
  "src/user_data/_bottle.ts",
  "src/user_data/errors.ts",
  "src/user_data/builtin.ts",
];
const PURE_EXTERNAL = [/^npm:\/?yaml@/, /^npm:\/?fast-xml-parser@/, /^node:path$/];

/** What the hook's process may load: this and nothing more. */
const HOOK_MODULES = [
  "hook.ts",
  "src/hook/run.ts",
  "src/admin/endpoint.ts",
  "src/admin/http1.ts",
  "src/config/files.ts",
  "src/config/ini.ts",
  "src/io/read_text.ts",
  "src/hook/config_drive_owner.ts",
  "src/hook/_qemu_account.ts",
];
/** Built-ins the hook's process may load: node:fs, imported only to give a config drive to QEMU's user (O_NOFOLLOW, fchown). */
const HOOK_EXTERNAL = ["node:fs"];

/** Files that only unit tests import. */
const UNIT_TEST_HELPERS = [
  "src/_temp_dir.ts",
  "src/_fixtures.ts",
  "src/user_data/_test_helpers.ts",
  "src/http_server/_raw_client_test_helper.ts",
];

/** Import edges between files of the project (relative paths), and to anything else (npm:, node:). */
interface Graph {
  local: Map<string, Set<string>>;
  external: Map<string, Set<string>>;
}

async function importGraph(entry: string): Promise<Graph> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string; dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[] }[];
  };
  const local = new Map<string, Set<string>>();
  const external = new Map<string, Set<string>>();
  const relative = (specifier: string) =>
    specifier.startsWith("file://") ? fileURLToPath(specifier).slice(ROOT.length) : null;
  for (const module of info.modules) {
    const from = relative(module.specifier);
    if (from === null) continue;
    local.set(from, new Set());
    external.set(from, new Set());
    for (const dependency of module.dependencies ?? []) {
      // Type-only imports count too: a pure module may not even name an I/O module's types.
      for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
        if (target === undefined) continue;
        const to = relative(target);
        if (to === null) external.get(from)!.add(target);
        else local.get(from)!.add(to);
      }
    }
  }
  return { local, external };
}

/** The part of a src/ file: its first folder, or its name for a file directly in src/. */
function partOf(path: string): string | null {
  const match = /^src\/([^/.]+)/.exec(path);
  return match ? match[1]! : null;
}

/** The entry points: the two programs, and every part's mod.ts (its public surface). */
const ENTRIES = [
  "main.ts",
  "hook.ts",
  ...[...Deno.readDirSync(`${ROOT}src`)].filter((entry) => entry.isDirectory)
    .map((entry) => `src/${entry.name}/mod.ts`)
    .filter((path) => {
      try {
        return Deno.statSync(`${ROOT}${path}`).isFile;
      } catch {
        return false;
      }
    }),
];

const graphs = Promise.all(ENTRIES.map(importGraph));

/** Every import edge between project files, once. */
async function allEdges(): Promise<[string, string][]> {
  const edges = new Map<string, [string, string]>();
  for (const graph of await graphs) {
    for (const [from, targets] of graph.local) for (const to of targets) edges.set(`${from} ${to}`, [from, to]);
  }
  return [...edges.values()];
}

Deno.test("each part imports only its own files and parts of a lower layer", async () => {
  const wrong: string[] = [];
  for (const [from, to] of await allEdges()) {
    const source = partOf(from);
    const target = partOf(to);
    if (source === null || target === null || source === target) continue;
    const sourceLayer = LAYERS[source];
    const targetLayer = LAYERS[target];
    assert.ok(sourceLayer !== undefined, `${from}: part "${source}" has no layer in LAYERS`);
    assert.ok(targetLayer !== undefined, `${to}: part "${target}" has no layer in LAYERS`);
    if (targetLayer >= sourceLayer) {
      wrong.push(`${from} (${source}, layer ${sourceLayer}) imports ${to} (${target}, layer ${targetLayer})`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("renderers, IPAM, host names and the XML reader reach nothing that does I/O or knows HTTP", async () => {
  const isPure = (path: string) => PURE.some((entry) => entry.endsWith("/") ? path.startsWith(entry) : path === entry);
  const wrong = new Set<string>();
  for (const graph of await graphs) {
    for (const [from, targets] of graph.local) {
      if (!isPure(from)) continue;
      for (const to of targets) if (!isPure(to)) wrong.add(`${from} imports ${to}`);
      for (const to of graph.external.get(from)!) {
        if (!PURE_EXTERNAL.some((allowed) => allowed.test(to))) wrong.add(`${from} imports ${to}`);
      }
      const text = await Deno.readTextFile(`${ROOT}${from}`);
      for (const match of text.matchAll(/\bDeno\.\w+/g)) wrong.add(`${from} uses ${match[0]}`);
      if (/\bfetch\(|\bRequest\b|\bResponse\b|HttpError/.test(text)) wrong.add(`${from} speaks HTTP`);
    }
  }
  assert.deepEqual([...wrong], []);
});

Deno.test("the hook's process loads only the admin endpoint reader, its HTTP/1.1 client, the text reader and the image owner", async () => {
  const hook = (await graphs)[ENTRIES.indexOf("hook.ts")]!;
  assert.deepEqual([...hook.local.keys()].sort(), [...HOOK_MODULES].sort());
  const external = [...hook.external.values()].flatMap((targets) => [...targets]);
  assert.deepEqual([...new Set(external)].sort(), HOOK_EXTERNAL);
});

Deno.test("every module of src/ is imported by main.ts or hook.ts: none is dead", async () => {
  const programs = (await graphs).slice(0, 2);
  const reached = new Set(programs.flatMap((graph) => [...graph.local.keys()]));
  const unreached: string[] = [];
  for await (const path of walk(`${ROOT}src`)) {
    const relative = path.slice(ROOT.length);
    if (relative.endsWith("_test.ts") || relative.endsWith("/mod.ts") || UNIT_TEST_HELPERS.includes(relative)) continue;
    if (!reached.has(relative)) unreached.push(relative);
  }
  assert.deepEqual(unreached, []);
});

Deno.test("only http/ raises HttpError, and no error is recognised by its message", async () => {
  const wrong: string[] = [];
  for await (const path of walk(`${ROOT}src`)) {
    const relative = path.slice(ROOT.length);
    if (relative.endsWith("_test.ts")) continue;
    const text = await Deno.readTextFile(path);
    if (!relative.startsWith("src/http/") && /\bHttpError\b/.test(text)) wrong.push(`${relative} uses HttpError`);
    if (/\.message\)?\.(includes|startsWith|endsWith|match)\(|\.test\([^)]*\.message\)/.test(text)) {
      wrong.push(`${relative} reads an error's message`);
    }
  }
  assert.deepEqual(wrong, []);
});

async function* walk(dir: string): AsyncIterable<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}
