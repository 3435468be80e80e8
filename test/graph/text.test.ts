import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GRAPH_LIMITS, loadWorkflowFile, nameFromFile, parseWorkflowText } from "../../runtime/graph/index.ts";
import { MAX_NESTING, nestingEstimate } from "../../runtime/graph/text.ts";
import { issuesOf } from "./helpers.ts";

describe("workflow text", () => {
  it("refuses a YAML alias bomb", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
    ].join("\n");
    expect(issuesOf(() => parseWorkflowText(bomb, "bomb.yaml"))).toEqual([{ field: "(root)", message: expect.stringContaining("YAML aliases") }]);
  });

  it("refuses a document over the size cap before parsing it", () => {
    const big = `{"x": "${"a".repeat(GRAPH_LIMITS.maxDocumentBytes)}"}`;
    expect(issuesOf(() => parseWorkflowText(big, "big.json"))[0]!.message).toContain(`limit of ${GRAPH_LIMITS.maxDocumentBytes}`);
  });

  it("reports malformed JSON and YAML with the file name", () => {
    expect(() => parseWorkflowText("{ not json", "broken.json")).toThrow(/broken\.json is invalid:[\s\S]*not valid JSON/);
    expect(() => parseWorkflowText("a: [1, 2", "broken.yaml")).toThrow(/broken\.yaml is invalid:[\s\S]*not valid YAML/);
  });

  it("refuses documents that are not objects", () => {
    expect(issuesOf(() => parseWorkflowText("42", "n.yaml"))[0]!.message).toContain("is number");
    expect(issuesOf(() => parseWorkflowText("", "empty.yaml"))[0]!.message).toContain("is null");
    expect(issuesOf(() => parseWorkflowText("[1]", "list.json"))[0]!.message).toContain("is a list");
  });

  it("refuses documents nested deeper than later serialization can take, instead of crashing", () => {
    const deepJson = `{"1": {"class_type": "A", "inputs": {"x": ${"[".repeat(100_000)}${"]".repeat(100_000)}}}}`;
    const deepYaml = [`x: ${"[".repeat(10_000)}${"]".repeat(10_000)}`, `${"- ".repeat(5_000)}x`, `x: it's ${"{".repeat(5_000)}`];
    for (const [text, file] of [[deepJson, "deep.json"], ...deepYaml.map((t) => [t, "deep.yaml"])] as const) {
      expect(issuesOf(() => parseWorkflowText(text, file))[0]!.message).toContain(`limit of ${MAX_NESTING}`);
    }
  });

  it("accepts ordinary nesting, and long strings with brackets in them", () => {
    const text = JSON.stringify({ "1": { class_type: "CLIPTextEncode", inputs: { text: "[".repeat(5_000), clip: ["2", 0] } }, "2": { class_type: "CLIPLoader", inputs: { clip_name: "t5xxl_fp16.safetensors" } } }, null, 2);
    expect(parseWorkflowText(text, "ok.json").comfyNodes).toHaveLength(2);
  });

  it("estimates YAML nesting without being fooled by quoted brackets or comments", () => {
    expect(nestingEstimate("a: '[[[['\nb: \"{{{{\" # [[[[\nc: [1, [2]]")).toBe(2);
    expect(nestingEstimate("a:\n  b:\n    - c")).toBe(6);
  });

  it("refuses __proto__ keys anywhere instead of dropping them silently", () => {
    expect(issuesOf(() => parseWorkflowText('{"1": {"class_type": "SaveImage", "inputs": {"__proto__": {"x": 1}}}}', "p.json"))).toEqual([
      { field: "1.inputs.__proto__", message: "'__proto__' is not allowed as a field name or id: rename it" },
    ]);
    const yaml = "apiVersion: gpufabric.dev/v1\nkind: Workflow\nmetadata: { name: x }\nspec:\n  stages:\n    - id: a\n      run: { command: [x], env: { __proto__: y } }\n";
    expect(issuesOf(() => parseWorkflowText(yaml, "p.yaml"))[0]!.field).toBe("spec.stages[0].run.env.__proto__");
  });

  it("names a ComfyUI prompt after its file", () => {
    expect(nameFromFile("prompts/SDXL Turbo_v2.json")).toBe("sdxl-turbo-v2");
    expect(nameFromFile("___.json")).toBe("comfyui");
    const graph = parseWorkflowText(JSON.stringify({ "1": { class_type: "SaveImage", inputs: {} } }), "My Flow.json");
    expect(graph.name).toBe("my-flow");
  });

  it("loads a file from disk and reports one that cannot be read", () => {
    const dir = mkdtempSync(join(tmpdir(), "graph-"));
    const file = join(dir, "wf.yaml");
    writeFileSync(file, "apiVersion: gpufabric.dev/v1\nkind: Workflow\nmetadata: { name: wf }\nspec: { stages: [ { id: a } ] }\n");
    expect(loadWorkflowFile(file).stages.map((s) => s.id)).toEqual(["a"]);
    expect(issuesOf(() => loadWorkflowFile(join(dir, "missing.yaml")))[0]!.message).toContain("ENOENT");
  });
});
