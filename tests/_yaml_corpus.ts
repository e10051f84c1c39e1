/**
 * Tricky cloud-config documents, each judged by Debian's PyYAML in
 * tests/yaml_pyyaml_test.ts: the expected answer is never written here.
 *
 * @module
 */

/** Documents, one concern each (the comment after the header names it). */
export const YAML_CORPUS: readonly string[] = [
  // duplicate keys: PyYAML keeps the last
  "#cloud-config\na: 1\na: 2\n",
  "#cloud-config\na: {b: 1, b: 2}\n",
  "#cloud-config\nusers:\n  - name: a\n    name: b\n",
  // tags the safe loader has, and has not
  "#cloud-config\na: !!python/tuple [1, 2]\n",
  "#cloud-config\na: !!python/object:os.system x\n",
  "#cloud-config\na: !<tag:yaml.org,2002:python/none> x\n",
  "#cloud-config\na: !Ref x\n",
  "#cloud-config\na: !!str 1\n",
  "#cloud-config\na: !!int x\n",
  "#cloud-config\na: !!timestamp nope\n",
  "#cloud-config\na: !!binary aGVsbG8=\n",
  "#cloud-config\na: !!set {x, y}\n",
  "#cloud-config\na: !!omap [x: 1]\n",
  "#cloud-config\na: ! x\n",
  "#cloud-config\na: !<tag:yaml.org,2002:str> x\n",
  "#cloud-config\n!!set {a, b}\n",
  // anchors, aliases, merge keys
  "#cloud-config\na: &x {b: 1}\nc: *x\n",
  "#cloud-config\nbase: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",
  "#cloud-config\n<<: {a: 1}\n",
  "#cloud-config\na: *nope\n",
  "#cloud-config\n&a a: *a\n",
  // YAML 1.1 scalars
  "#cloud-config\na: yes\nb: on\nc: 0755\nd: 0o755\ne: 1:20\nf: 52:54:00:12:34:56\n",
  "#cloud-config\na: !!float .inf\nb: .NaN\nc: 1_000\nd: 2001-12-14t21:59:43.10-05:00\n",
  // line breaks PyYAML knows and YAML 1.2 does not
  "#cloud-config\na: b\u2028c: d\n",
  "#cloud-config\na: b\u0085c: d\n",
  "#cloud-config\na: b\u2029runcmd: [id]\n",
  '#cloud-config\na: "b\u2029c"\n',
  "#cloud-config\na: 'b\u2028c'\n",
  '#cloud-config\na: "\\x41\\u2028"\n',
  "#cloud-config\nfqdn: web\u2028runcmd:\u2028  - touch /pwned\n",
  // characters PyYAML's reader refuses, and some it allows
  "#cloud-config\na: \x07bell\n",
  "#cloud-config\na: \x7f\n",
  "#cloud-config\na: \x80\n",
  "#cloud-config\na: \uffff\n",
  "#cloud-config\na: \ufeffx\n",
  "#cloud-config\na: h\u00e9llo \u2603 \u{1f600}\n",
  // tabs
  "#cloud-config\na:\tb\n",
  "#cloud-config\na: b\tc\n",
  "#cloud-config\n\ta: 1\n",
  "#cloud-config\na: |\n  \tx\n",
  "#cloud-config\na: '\t'\n",
  '#cloud-config\na: "x\ty"\n',
  "#cloud-config\n#\tcomment\na: 1\n",
  "#cloud-config\na: [b,\tc]\n",
  "#cloud-config\na: b\n\t\n",
  // structure
  "#cloud-config\n? [a, b]\n: c\n",
  "#cloud-config\n? {a: 1}\n: c\n",
  "#cloud-config\na: [1, 2\n",
  "#cloud-config\na: |\n  x\n   y\n b: 1\n",
  "#cloud-config\na: 1\n---\nb: 2\n",
  "#cloud-config\n...\n",
  "#cloud-config\na: 1\n...\n",
  "#cloud-config\n---\n...\n",
  "#cloud-config\n%YAML 1.1\n---\na: 1\n",
  "#cloud-config\na: @x\n",
  "#cloud-config\na: `x\n",
  '#cloud-config\nruncmd:\n - [echo, "a: b"]\n',
  "#cloud-config\nkey: value # comment\nother: 'it''s'\n",
  // roots cloud-init does not take as cloud-config
  "#cloud-config\n- a\n",
  "#cloud-config\njust a string\n",
  "#cloud-config\n''\n",
  "#cloud-config\n",
  "#cloud-config\n~\n",
  // headers as cloud-init matches them
  "#Cloud-Config\nhostname: a\n",
  "  \n#cloud-config\nhostname: a\n",
  "#CLOUD-CONFIG\n- a\n",
  "#cloud-config-archive\n- type: text/cloud-config\n  content: 'a: b'\n",
  "#cloud-config-archive\na: 1\na: 2\n",
];
