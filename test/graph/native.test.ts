import { describe, expect, it } from "vitest";
import { DEFAULT_STAGE_VRAM_MIB, GRAPH_LIMITS, parseWorkflow, parseWorkflowText } from "../../runtime/graph/index.ts";
import { chainDoc, issuesOf, nativeDoc } from "./helpers.ts";

describe("native workflows", () => {
  it("converts a valid document into stages with resources, run and estimates", () => {
    const graph = parseWorkflow(
      nativeDoc(
        [
          { id: "prompt", resources: { gpus: 0 }, run: { command: ["node", "prompt.mjs"], env: { SCENES: "4" } } },
          {
            id: "render",
            needs: ["prompt"],
            resources: { gpus: 2, vram: "24Gi", model: "sdxl" },
            run: { command: ["python", "render.py"], image: "ghcr.io/acme/render:1", timeoutSeconds: 600 },
            priority: "interactive",
            estimate: { durationSeconds: 30, modelLoadSeconds: 12 },
          },
          { id: "notify", needs: ["render"], resources: { vram: 512 } },
        ],
        { priority: "batch" },
      ),
    );
    expect(graph.format).toBe("native");
    expect(graph.name).toBe("test");
    expect(graph.priority).toBe("batch");
    expect(graph.stages).toEqual([
      { id: "prompt", needs: [], resources: { gpus: 0, vramMiB: 0 }, run: { command: ["node", "prompt.mjs"], env: { SCENES: "4" } } },
      {
        id: "render",
        needs: ["prompt"],
        resources: { gpus: 2, vramMiB: 24576, model: "sdxl" },
        run: { command: ["python", "render.py"], env: {}, image: "ghcr.io/acme/render:1", timeoutSeconds: 600 },
        priority: "interactive",
        estimate: { durationS: 30, modelLoadS: 12 },
      },
      { id: "notify", needs: ["render"], resources: { gpus: 1, vramMiB: 512 } },
    ]);
  });

  it("defaults gpus to 1 and VRAM to the documented default for GPU stages", () => {
    const graph = parseWorkflow(nativeDoc([{ id: "a" }]));
    expect(graph.stages[0]!.resources).toEqual({ gpus: 1, vramMiB: DEFAULT_STAGE_VRAM_MIB });
  });

  it("lets options.name override metadata.name", () => {
    expect(parseWorkflow(nativeDoc([{ id: "a" }]), { name: "other" }).name).toBe("other");
  });

  it("names an unknown field by its path and suggests the right one", () => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a" }, { id: "b" }, { id: "c", resorces: { gpus: 1 } }])));
    expect(issues).toEqual([{ field: "spec.stages[2].resorces", message: "unknown field; did you mean 'resources'?" }]);
  });

  it("lists the allowed fields when an unknown one is not close to any", () => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", run: { command: ["x"], zzz: 1 } }])));
    expect(issues[0]!.field).toBe("spec.stages[0].run.zzz");
    expect(issues[0]!.message).toBe("unknown field (allowed here: command, image, env, timeoutSeconds, network)");
  });

  it("refuses unknown top-level and metadata fields", () => {
    const doc = { ...nativeDoc([{ id: "a" }]), specs: {}, metadata: { name: "x", nmae: "y" } };
    const fields = issuesOf(() => parseWorkflow(doc, { format: "native" })).map((i) => i.field);
    expect(fields).toEqual(expect.arrayContaining(["specs", "metadata.nmae"]));
  });

  it.each([
    ["Render", "lowercase"],
    ["-a", "starting with a letter or digit"],
    ["a b", "lowercase letters, digits"],
    ["a".repeat(64), "1 to 63"],
  ])("refuses the stage id %j and says what ids look like", (id, hint) => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id }])));
    expect(issues[0]!.field).toBe("spec.stages[0].id");
    expect(issues[0]!.message).toContain(hint);
  });

  it("refuses a bad workflow name, apiVersion and kind", () => {
    const doc = { apiVersion: "v2", kind: "Job", metadata: { name: "Not_A_Label" }, spec: { stages: [{ id: "a" }] } };
    const issues = issuesOf(() => parseWorkflow(doc));
    expect(issues.map((i) => i.field)).toEqual(["apiVersion", "kind", "metadata.name"]);
    expect(issues[0]!.message).toContain("gpufabric.dev/v1");
    expect(issues[2]!.message).toContain("DNS-1123");
  });

  it("refuses a missing spec and an empty stage list", () => {
    expect(issuesOf(() => parseWorkflow({ apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "x" } }))).toEqual([
      { field: "spec", message: expect.stringContaining("is required") },
    ]);
    expect(issuesOf(() => parseWorkflow(nativeDoc([])))[0]).toEqual({ field: "spec.stages", message: "must declare at least one stage" });
  });

  it.each([
    [{ gpus: -1 }, "spec.stages[0].resources.gpus"],
    [{ gpus: 1.5 }, "spec.stages[0].resources.gpus"],
    [{ vram: "lots" }, "spec.stages[0].resources.vram"],
    [{ vram: -5 }, "spec.stages[0].resources.vram"],
    [{ vram: true }, "spec.stages[0].resources.vram"],
    [{ model: "" }, "spec.stages[0].resources.model"],
  ])("refuses resources %j at %s", (resources, field) => {
    expect(issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", resources }])))[0]!.field).toBe(field);
  });

  it("refuses an empty command, a bad env name and a non-positive timeout", () => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", run: { command: [], env: { "1X": "y" }, timeoutSeconds: 0 } }])));
    expect(issues.map((i) => i.field)).toEqual(["spec.stages[0].run.command", "spec.stages[0].run.env.1X", "spec.stages[0].run.timeoutSeconds"]);
  });

  it("refuses duplicate stage ids, naming both places", () => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a" }, { id: "b" }, { id: "a" }])));
    expect(issues).toEqual([{ field: "spec.stages[2].id", message: expect.stringMatching(/duplicate stage id 'a' \(also at spec\.stages\[0\]\)/) }]);
  });

  it("refuses needs on a stage that does not exist, with a did-you-mean", () => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "render" }, { id: "upscale", needs: ["rendr"] }])));
    expect(issues).toEqual([{ field: "spec.stages[1].needs[0]", message: "unknown stage 'rendr'; did you mean 'render'?: name a stage declared under spec.stages" }]);
  });

  it("refuses a stage that needs itself and a need listed twice", () => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", needs: ["a"] }, { id: "b" }, { id: "c", needs: ["b", "b"] }])));
    expect(issues.map((i) => i.field)).toEqual(["spec.stages[0].needs[0]", "spec.stages[2].needs[1]"]);
    expect(issues[0]!.message).toContain("depends on itself");
    expect(issues[1]!.message).toContain("listed twice");
  });

  it("names every stage on a cycle, in execution order", () => {
    const issues = issuesOf(() =>
      parseWorkflow(nativeDoc([{ id: "start" }, { id: "a", needs: ["start", "c"] }, { id: "b", needs: ["a"] }, { id: "c", needs: ["b"] }, { id: "after", needs: ["c"] }])),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).toMatch(/^cycle between stages: /);
    // Starts at the stage declared first; the field is the need that closes the cycle.
    expect(issues[0]!.message).toContain("'a' → 'b' → 'c' → 'a'");
    expect(issues[0]!.field).toBe("spec.stages[1].needs[1]");
    expect(issues[0]!.message).not.toContain("'start'");
    expect(issues[0]!.message).not.toContain("'after'");
  });

  it("reports separate cycles separately", () => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", needs: ["b"] }, { id: "b", needs: ["a"] }, { id: "x", needs: ["y"] }, { id: "y", needs: ["x"] }])));
    expect(issues).toHaveLength(2);
  });

  it("handles a 10,000-stage chain without recursion", () => {
    const graph = parseWorkflow(chainDoc(GRAPH_LIMITS.maxStages));
    expect(graph.stages).toHaveLength(10_000);
    expect(graph.stages[9_999]!.needs).toEqual(["s9998"]);
  });

  it("finds the cycle closing a 10,000-stage chain", () => {
    const doc = chainDoc(GRAPH_LIMITS.maxStages);
    const stages = (doc.spec as { stages: { id: string; needs?: string[] }[] }).stages;
    stages[0]!.needs = ["s9999"];
    const issues = issuesOf(() => parseWorkflow(doc));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.field).toBe("spec.stages[0].needs[0]");
    expect(issues[0]!.message).toContain("'s0' → 's1'");
    expect(issues[0]!.message).toContain("'s9999' → 's0'");
    expect(issues[0]!.message).toContain("… 9989 more …");
  });

  it("refuses more stages than the cap before validating them one by one", () => {
    const issues = issuesOf(() => parseWorkflow(chainDoc(GRAPH_LIMITS.maxStages + 1)));
    expect(issues).toEqual([{ field: "spec.stages", message: expect.stringContaining(`limit of ${GRAPH_LIMITS.maxStages}`) }]);
  });

  it("refuses more needs per stage than the cap", () => {
    const needs = Array.from({ length: GRAPH_LIMITS.maxNeedsPerStage + 1 }, (_, i) => `s${i}`);
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", needs }])));
    expect(issues[0]!.field).toBe("spec.stages[0].needs");
    expect(issues[0]!.message).toContain(String(GRAPH_LIMITS.maxNeedsPerStage));
  });

  it("parses YAML text", () => {
    const text = [
      "apiVersion: gpufabric.dev/v1",
      "kind: Workflow",
      "metadata: { name: yaml-demo }",
      "spec:",
      "  priority: interactive",
      "  stages:",
      "    - id: a",
      "      resources: { gpus: 1, vram: 8Gi, model: flux }",
      "    - { id: b, needs: [a], resources: { gpus: 0 } }",
    ].join("\n");
    const graph = parseWorkflowText(text, "demo.yaml");
    expect(graph).toMatchObject({ name: "yaml-demo", format: "native", priority: "interactive" });
    expect(graph.stages.map((s) => [s.id, s.resources.vramMiB])).toEqual([["a", 8192], ["b", 0]]);
  });
});

describe("run.network", () => {
  it("keeps a stage offline unless it declares egress, and names the field when the value is wrong", () => {
    const doc = (network?: unknown) => ({
      apiVersion: "gpufabric.dev/v1",
      kind: "Workflow",
      metadata: { name: "net" },
      spec: { stages: [{ id: "fetch", resources: { gpus: 0 }, run: { command: ["curl", "x"], ...(network !== undefined && { network }) } }] },
    });
    expect(parseWorkflow(doc()).stages[0]!.run!.network).toBeUndefined();
    expect(parseWorkflow(doc("none")).stages[0]!.run!.network).toBeUndefined();
    expect(parseWorkflow(doc("egress")).stages[0]!.run!.network).toBe("egress");
    expect(() => parseWorkflow(doc("internet"))).toThrow(/run\.network[\s\S]*'none' \(the default\) or 'egress'/);
  });
});
