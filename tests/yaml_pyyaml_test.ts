/**
 * mdserver's cloud-config check against the parser cloud-init uses:
 * Debian's PyYAML safe loader decides every document of the corpus, and
 * mdserver must accept exactly those cloud-init would take (a mapping or
 * nothing for `#cloud-config`, any YAML for `#cloud-config-archive`).
 */
import assert from "node:assert/strict";
import { checkCloudConfig, cloudConfigKind, TemplateError } from "../src/user_data/mod.ts";
import { YAML_CORPUS } from "./_yaml_corpus.ts";
import { PYTHON } from "./_cloudinit.ts";
import { requireTool } from "./_requirements.ts";

const missing = await requireTool("PyYAML (Debian python3-yaml)", [
  PYTHON,
  "/usr/lib/python3/dist-packages/yaml/__init__.py",
]);

// What cloud-init's util.load_yaml does, per document: safe_load, then the root type.
const JUDGE = `
import json, sys, yaml
for doc in json.load(sys.stdin):
    try:
        value = yaml.safe_load(doc)
    except Exception as error:
        print(json.dumps({"loads": False, "why": type(error).__name__ + ": " + str(error).split("\\n")[0]}))
        continue
    print(json.dumps({"loads": True, "root": "none" if value is None else type(value).__name__}))
`;

async function pyyamlVerdicts(docs: readonly string[]): Promise<{ loads: boolean; root?: string; why?: string }[]> {
  const child = new Deno.Command(PYTHON, { args: ["-c", JUDGE], stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(docs)));
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout).trim().split("\n").map((line) => JSON.parse(line));
}

Deno.test({
  name: "checkCloudConfig() accepts a document exactly when cloud-init's PyYAML takes it as cloud-config",
  ignore: missing !== null,
  async fn() {
    const verdicts = await pyyamlVerdicts(YAML_CORPUS);
    const disagreements: string[] = [];
    YAML_CORPUS.forEach((doc, index) => {
      const kind = cloudConfigKind(doc);
      assert.ok(kind !== null, `corpus document ${index} is not cloud-config by its start: ${JSON.stringify(doc)}`);
      const verdict = verdicts[index]!;
      const cloudInit = verdict.loads &&
        (kind !== "text/cloud-config" || verdict.root === "dict" || verdict.root === "none");
      let ours: boolean;
      let why = "";
      try {
        checkCloudConfig(doc, "corpus", kind);
        ours = true;
      } catch (error) {
        if (!(error instanceof TemplateError)) throw error;
        ours = false;
        why = error.message;
      }
      if (ours !== cloudInit) {
        disagreements.push(
          `${JSON.stringify(doc)}: PyYAML ${verdict.loads ? `loads a ${verdict.root}` : `refuses (${verdict.why})`}, ` +
            `mdserver ${ours ? "accepts" : `refuses (${why})`}`,
        );
      }
    });
    assert.deepEqual(disagreements, []);
    // The corpus is not one-sided.
    assert.ok(verdicts.filter((verdict) => verdict.loads).length > 20);
    assert.ok(verdicts.filter((verdict) => !verdict.loads).length > 20);
  },
});

Deno.test("checkCloudConfig() reports duplicate keys as warnings with their line", () => {
  assert.deepEqual(checkCloudConfig("#cloud-config\na: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "t", "text/cloud-config"), [
    { line: 5, message: 'duplicate key "c": the last one wins' },
    { line: 6, message: 'duplicate key "a": the last one wins' },
  ]);
});
