/**
 * A metadata tree as the EC2 API serves it: directories list their entries
 * one a line (directories with a trailing "/"), leaves are plain text.
 *
 * @module
 */

/** A directory: named children, and optionally the names it lists instead of theirs. */
export interface TreeDirectory {
  /** Marks a directory. */
  kind: "directory";
  /** Entries by name, in listing order. */
  children: Map<string, TreeNode>;
  /** Listing lines to print instead of the child names (EC2's `0=name` keys). */
  listing?: string[];
}

/** A node of the tree: a directory or a leaf's text. */
export type TreeNode = TreeDirectory | string;

/** Builds a directory from [name, node] pairs, skipping null nodes. */
export function directory(
  entries: [string, TreeNode | null | undefined][],
  listing?: string[],
): TreeDirectory {
  const children = new Map<string, TreeNode>();
  for (const [name, node] of entries) if (node !== null && node !== undefined) children.set(name, node);
  return listing ? { kind: "directory", children, listing } : { kind: "directory", children };
}

/** The outcome of looking a path up: a listing, a leaf, or nothing. */
export type TreeLookup =
  | { kind: "listing"; body: string }
  | { kind: "leaf"; body: string }
  | { kind: "missing" };

/**
 * Looks a "/"-separated path up. A directory answers with or without its
 * trailing slash; a leaf only without one.
 */
export function lookupPath(root: TreeDirectory, path: string): TreeLookup {
  const trailing = path.endsWith("/");
  const segments = path.split("/").filter((segment) => segment !== "");
  let node: TreeNode = root;
  for (const segment of segments) {
    if (typeof node === "string") return { kind: "missing" };
    const child: TreeNode | undefined = node.children.get(segment);
    if (child === undefined) return { kind: "missing" };
    node = child;
  }
  if (typeof node === "string") {
    return trailing ? { kind: "missing" } : { kind: "leaf", body: node };
  }
  return { kind: "listing", body: listDirectory(node) };
}

/** A directory's listing: one entry a line, directories ending in "/". */
export function listDirectory(node: TreeDirectory): string {
  if (node.listing) return node.listing.join("\n");
  const lines: string[] = [];
  for (const [name, child] of node.children) {
    lines.push(typeof child === "string" ? name : `${name}/`);
  }
  return lines.join("\n");
}

/** Every path in the tree with its answer, for tests and the conformance walk. */
export function walkTree(root: TreeDirectory, base = ""): [string, string][] {
  const out: [string, string][] = [[`${base}/`, listDirectory(root)]];
  for (const [name, child] of root.children) {
    if (typeof child === "string") out.push([`${base}/${name}`, child]);
    else out.push(...walkTree(child, `${base}/${name}`));
  }
  return out;
}

/** A metadata tree as nested JSON objects, the way Nova writes `ec2/latest/meta-data.json`. */
export function treeToJson(tree: TreeDirectory): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, child] of tree.children) {
    out[name] = typeof child === "string" ? child : treeToJson(child);
  }
  return out;
}
