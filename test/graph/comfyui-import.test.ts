import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { detectFormat, isComfyLink, loadWorkflowFile, parseWorkflow } from "../../runtime/graph/index.ts";
import { sharedDataDir } from "../support/shared.ts";
import { issuesOf } from "./helpers.ts";

const dir = sharedDataDir("comfyui");
const files = dir ? readdirSync(dir).filter((f) => f.endsWith(".json")).sort() : [];

describe.skipIf(!dir)("the shared ComfyUI prompts", () => {
  it.each(files)("imports %s with every node, link and literal input", (file) => {
    const path = join(dir!, file);
    const raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    const graph = loadWorkflowFile(path);
    expect(graph.format).toBe("comfyui");
    expect(graph.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    const nodes = graph.comfyNodes!;
    expect(nodes.map((n) => n.id).sort()).toEqual(Object.keys(raw).sort());
    for (const node of nodes) {
      const source = raw[node.id]!;
      expect(node.classType).toBe(source.class_type);
      // Every input lands on exactly one side: a link or a literal.
      for (const [input, value] of Object.entries(source.inputs)) {
        if (isComfyLink(value)) {
          expect(node.links).toContainEqual({ input, from: value[0], output: value[1] });
          expect(raw[value[0]], `${file}: node ${node.id} links to a node that exists`).toBeDefined();
        } else {
          expect(node.inputs[input]).toEqual(value);
        }
      }
      expect(Object.keys(node.inputs).length + node.links.length).toBe(Object.keys(source.inputs).length);
    }
    // One stage per node before segmentation, needs from links.
    expect(graph.stages).toHaveLength(nodes.length);
    for (const stage of graph.stages) {
      const node = nodes.find((n) => n.id === stage.id)!;
      expect([...stage.needs].sort()).toEqual([...new Set(node.links.map((l) => l.from))].sort());
    }
  });
});

const tiny = {
  "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sd_xl_base_1.0.safetensors" }, _meta: { title: "Load Checkpoint" } },
  "6": { class_type: "CLIPTextEncode", inputs: { text: "a cat", clip: ["4", 1] } },
  "5": { class_type: "EmptyLatentImage", inputs: { width: 1024, height: 1024, batch_size: 1 } },
  "3": { class_type: "KSampler", inputs: { seed: 1, steps: 20, model: ["4", 0], positive: ["6", 0], negative: ["6", 0], latent_image: ["5", 0] } },
};

describe("ComfyUI import", () => {
  it("splits literal inputs from links and keeps titles", () => {
    const graph = parseWorkflow(tiny, { name: "tiny" });
    expect(graph.name).toBe("tiny");
    const sampler = graph.comfyNodes!.find((n) => n.id === "3")!;
    expect(sampler.inputs).toEqual({ seed: 1, steps: 20 });
    expect(sampler.links).toEqual([
      { input: "model", from: "4", output: 0 },
      { input: "positive", from: "6", output: 0 },
      { input: "negative", from: "6", output: 0 },
      { input: "latent_image", from: "5", output: 0 },
    ]);
    expect(graph.comfyNodes!.find((n) => n.id === "4")!.title).toBe("Load Checkpoint");
    expect(graph.stages.find((s) => s.id === "3")!.needs).toEqual(["4", "6", "5"]);
  });

  it("gives each per-node stage the cost table's figures for that node", () => {
    const graph = parseWorkflow(tiny, { name: "tiny" });
    const byId = new Map(graph.stages.map((s) => [s.id, s]));
    expect(byId.get("4")!.resources).toEqual({ gpus: 1, vramMiB: Math.ceil(6.5 * 1024), model: "sd_xl_base_1.0.safetensors" });
    expect(byId.get("4")!.estimate!.modelLoadS).toBeCloseTo(1 + 6.5 / 2, 6);
    expect(byId.get("5")!.resources).toEqual({ gpus: 0, vramMiB: 0 });
    expect(byId.get("3")!.resources).toMatchObject({ gpus: 1, model: "sd_xl_base_1.0.safetensors" });
  });

  it("accepts the body of a POST /prompt request and flattened subgraph ids", () => {
    const graph = parseWorkflow({ prompt: { "57:8": tiny["4"], "9": { class_type: "CLIPTextEncode", inputs: { text: "x", clip: ["57:8", 1] } } }, client_id: "abc" });
    expect(graph.format).toBe("comfyui");
    expect(graph.stages.find((s) => s.id === "9")!.needs).toEqual(["57:8"]);
  });

  it("names the node and input of a dangling link", () => {
    const issues = issuesOf(() => parseWorkflow({ ...tiny, "3": { class_type: "KSampler", inputs: { model: ["44", 0] } } }));
    expect(issues).toEqual([{ field: '"3".inputs.model', message: "unknown node '44'; did you mean '4'?: add that node or point the input at an existing node's output" }]);
  });

  it("refuses a link to an output a core node does not have, listing its outputs", () => {
    const issues = issuesOf(() => parseWorkflow({ ...tiny, "6": { class_type: "CLIPTextEncode", inputs: { text: "a cat", clip: ["4", 3] } } }));
    expect(issues).toEqual([{ field: '"6".inputs.clip', message: "links to output 3 of node '4' (CheckpointLoaderSimple), whose outputs are 0 MODEL, 1 CLIP, 2 VAE: link one of those" }]);
    // Custom classes may have any outputs.
    expect(parseWorkflow({ "1": { class_type: "AcmeLoader", inputs: {} }, "2": { class_type: "SaveImage", inputs: { images: ["1", 7] } } }).comfyNodes).toHaveLength(2);
  });

  it("names the nodes of a cycle", () => {
    const doc = {
      "1": { class_type: "A", inputs: { x: ["3", 0] } },
      "2": { class_type: "B", inputs: { x: ["1", 0] } },
      "3": { class_type: "C", inputs: { x: ["2", 0] } },
      "4": { class_type: "D", inputs: { x: ["3", 0] } },
    };
    const issues = issuesOf(() => parseWorkflow(doc));
    expect(issues).toEqual([{ field: '"1".inputs.x', message: expect.stringContaining("'1' → '2' → '3' → '1'") }]);
  });

  it("refuses a node without class_type, a non-object node, bad inputs, unknown fields and bad ids", () => {
    const issues = issuesOf(() =>
      parseWorkflow(
        {
          "1": { class_type: "A", inputs: {} },
          "2": { inputs: {} },
          "3": "KSampler",
          "4": { class_type: "B", inputs: [1, 2] },
          "5": { class_type: "C", inputs: {}, clas_type: "x" },
          "a b": { class_type: "D", inputs: {} },
          "6": { class_type: "E", inputs: { x: ["1", -1] } },
        },
        { format: "comfyui" },
      ),
    );
    expect(issues.map((i) => i.field)).toEqual(['"2".class_type', '"3"', '"4".inputs', '"5".clas_type', '"6".inputs.x', '"a b"']);
  });

  it("refuses __proto__ as a node id or input name in a prompt built in code", () => {
    const prompt = JSON.parse('{"__proto__": {"class_type": "A", "inputs": {}}, "1": {"class_type": "B", "inputs": {"__proto__": 1}}}') as unknown;
    expect(issuesOf(() => parseWorkflow(prompt, { format: "comfyui" })).map((i) => i.field)).toEqual(['"1".inputs.__proto__', '"__proto__"']);
  });

  it("refuses an empty prompt", () => {
    expect(issuesOf(() => parseWorkflow({}, { format: "comfyui" }))[0]!.message).toContain("has no nodes");
  });

  it("detects formats and explains documents that are neither", () => {
    expect(detectFormat(tiny)).toBe("comfyui");
    expect(detectFormat({ apiVersion: "gpufabric.dev/v1" })).toBe("native");
    expect(issuesOf(() => detectFormat([1, 2]))[0]!.message).toContain("is a list");
    expect(issuesOf(() => detectFormat("text"))[0]!.message).toContain("is string");
    expect(issuesOf(() => detectFormat(null))[0]!.message).toContain("is null");
    expect(issuesOf(() => detectFormat({ hello: 1 }))[0]!.message).toContain("neither a gpufabric Workflow");
    expect(issuesOf(() => detectFormat({ nodes: [], links: [], version: 0.4 }))[0]!.message).toContain("Export (API)");
  });
});

describe("class types that name Object.prototype's own members", () => {
  it("import as unknown nodes, never as the prototype's functions", () => {
    for (const classType of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"]) {
      const graph = parseWorkflow({
        "1": { class_type: classType, inputs: { seed: "-1", ckpt_name: "" } },
        "2": { class_type: "SaveImage", inputs: { images: ["1", 0] } },
      });
      expect(graph.format, classType).toBe("comfyui");
      expect(graph.stages.length, classType).toBeGreaterThan(0);
    }
  });
});
