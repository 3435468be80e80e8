import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GRAPH_LIMITS, loadWorkflowFile, nameFromFile, parseWorkflowText } from "../../runtime/graph/index.ts";
import { MAX_YAML_NESTING, yamlNestingEstimate } from "../../runtime/graph/text.ts";
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

  it("accepts deeply nested JSON literals (JSON.parse does not recurse)", () => {
    const deep = `{"1": {"class_type": "A", "inputs": {"x": ${"[".repeat(100_000)}${"]".repeat(100_000)}}}}`;
    expect(parseWorkflowText(deep, "deep.json").comfyNodes).toHaveLength(1);
  });

  it("refuses YAML nested deeper than the parser can take, instead of crashing", () => {
    for (const text of [`x: ${"[".repeat(10_000)}${"]".repeat(10_000)}`, `${"- ".repeat(5_000)}x`, `x: it's ${"{".repeat(5_000)}`]) {
      expect(issuesOf(() => parseWorkflowText(text, "deep.yaml"))[0]!.message).toContain(`limit of ${MAX_YAML_NESTING}`);
    }
  });

  it("estimates YAML nesting without being fooled by quoted brackets or comments", () => {
    expect(yamlNestingEstimate("a: '[[[['\nb: \"{{{{\" # [[[[\nc: [1, [2]]")).toBe(2);
    expect(yamlNestingEstimate("a:\n  b:\n    - c")).toBe(6);
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
