import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { STAGE_ID } from "../../runtime/graph/native.ts";
import { nonTrivialComponents } from "../../runtime/graph/cost/segment.ts";
import {
  CostModel,
  compareNodeIds,
  identifyModel,
  isComfyLink,
  loadWorkflowFile,
  parseWorkflow,
  segmentComfyGraph,
  stagesFor,
  type Stage,
  type WorkflowGraph,
} from "../../runtime/graph/index.ts";
import { sharedDataDir } from "../support/shared.ts";
import { node, txt2imgUpscale, type Prompt } from "./comfy-builders.ts";
import { nativeDoc } from "./helpers.ts";

/** The prompt with every node id (and link) prefixed by "n". */
function prefixIds(prompt: Record<string, { inputs: Record<string, unknown> }>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(prompt).map(([id, n]) => [
      `n${id}`,
      { ...n, inputs: Object.fromEntries(Object.entries(n.inputs).map(([k, v]) => [k, isComfyLink(v) ? [`n${v[0]}`, v[1]] : v])) },
    ]),
  );
}

const comfy = (prompt: Prompt): WorkflowGraph => parseWorkflow(prompt, { format: "comfyui", name: "t" });

/** Checks the properties every segmentation must have, and returns the stages. */
function expectValidSegmentation(graph: WorkflowGraph): Stage[] {
  const stages = stagesFor(graph);
  const nodeIds = graph.comfyNodes!.map((n) => n.id);
  // Every node in exactly one stage.
  const covered = stages.flatMap((s) => s.comfyNodes ?? []);
  expect([...covered].sort()).toEqual([...nodeIds].sort());
  expect(new Set(covered).size).toBe(covered.length);
  // Stage ids unique and valid; needs only on earlier stages (so the list is topological and acyclic).
  const seen = new Set<string>();
  for (const stage of stages) {
    expect(stage.id).toMatch(STAGE_ID);
    expect(seen.has(stage.id)).toBe(false);
    for (const need of stage.needs) expect(seen.has(need), `${stage.id} needs ${need}, which must come earlier`).toBe(true);
    seen.add(stage.id);
    expect(stage.resources.gpus === 0 || stage.resources.vramMiB > 0).toBe(true);
    expect(stage.estimate!.durationS).toBeGreaterThanOrEqual(0);
  }
  // Every link between stages is portable, and every GPU-affine link stays inside a stage.
  const stageOf = new Map(stages.flatMap((s) => (s.comfyNodes ?? []).map((n) => [n, s] as const)));
  for (const n of graph.comfyNodes!) {
    for (const link of n.links) {
      const from = stageOf.get(link.from)!;
      const to = stageOf.get(n.id)!;
      if (from !== to) expect(to.needs).toContain(from.id);
    }
  }
  return stages;
}

const dir = sharedDataDir("comfyui");
const files = dir ? readdirSync(dir).filter((f) => f.endsWith(".json")).sort() : [];

describe.skipIf(!dir)("segmentation of the shared ComfyUI prompts", () => {
  it.each(files)("%s segments into a DAG covering every node once", (file) => {
    const graph = loadWorkflowFile(join(dir!, file));
    const stages = expectValidSegmentation(graph);
    // A GPU stage holds at least the weights of the diffusion models it loads.
    for (const stage of stages.filter((s) => s.resources.gpus > 0 && s.resources.model)) {
      const model = identifyModel(stage.resources.model!);
      if (model.kind === "diffusion") expect(stage.resources.vramMiB).toBeGreaterThan(model.sizeMiB / 2);
    }
    // Deterministic: the same prompt with its nodes in reverse order segments identically. Ids get a
    // prefix so they are not integer-like (JavaScript orders integer-like keys numerically).
    const raw = prefixIds(JSON.parse(readFileSync(join(dir!, file), "utf8")) as Record<string, { inputs: Record<string, unknown> }>);
    const reversed = Object.fromEntries(Object.entries(raw).reverse());
    expect(Object.keys(reversed)).toEqual(Object.keys(raw).reverse());
    expect(stagesFor(parseWorkflow(reversed, { name: "r" }))).toEqual(stagesFor(parseWorkflow(raw, { name: "r" })));
  });
});

describe("segmentation", () => {
  it("splits loader → sampler → decode | upscale at the IMAGE link and folds the save into the upscale", () => {
    const stages = expectValidSegmentation(comfy(txt2imgUpscale()));
    expect(stages.map((s) => [s.id, s.needs, s.comfyNodes])).toEqual([
      ["ksampler-1", [], ["1", "2", "3", "4", "5", "6"]],
      ["imageupscalewithmodel-7", ["ksampler-1"], ["7", "8", "9"]],
    ]);
    const [gen, upscale] = stages as [Stage, Stage];
    expect(gen.resources.gpus).toBe(1);
    expect(gen.resources.model).toBe("sd_xl_base_1.0.safetensors");
    // Resident SDXL weights plus the largest activation (the VAE decode at 1 MP: 0.5 + 1.5 GiB).
    expect(gen.resources.vramMiB).toBe(Math.ceil(6.5 * 1024) + 2 * 1024);
    expect(upscale.resources).toEqual({ gpus: 1, vramMiB: Math.ceil(0.07 * 1024) + 1536, model: "RealESRGAN_x4plus.pth" });
    // Durations add up over the nodes; the load time is the loaded models'.
    expect(gen.estimate!.modelLoadS).toBeCloseTo(1 + 6.5 / 2, 2);
    expect(upscale.estimate!.durationS).toBeCloseTo(0.3 + 1.5 + 0.1 + 0.05, 3);
  });

  it("keeps a long CPU-only node as its own stage", () => {
    const prompt = txt2imgUpscale();
    prompt["4"] = node("EmptyLatentImage", { width: 1024, height: 1024, batch_size: 64 });
    const stages = expectValidSegmentation(comfy(prompt));
    // Saving 64 images takes longer than the fold limit.
    expect(stages.map((s) => s.id)).toEqual(["ksampler-1", "imageupscalewithmodel-7", "saveimage-9"]);
    expect(stages[2]!.resources).toEqual({ gpus: 0, vramMiB: 0 });
  });

  it("merges segments that depend on each other in a circle", () => {
    // A (sampler) → IMAGE → B (upscale) → IMAGE → C (re-encode + second sampler), and A and C share the checkpoint.
    const prompt: Prompt = {
      ...txt2imgUpscale(),
      "10": node("VAEEncode", { pixels: ["8", 0], vae: ["1", 2] }),
      "11": node("KSampler", { seed: 1, steps: 10, cfg: 5, denoise: 0.4, model: ["1", 0], positive: ["2", 0], negative: ["3", 0], latent_image: ["10", 0] }),
      "12": node("VAEDecode", { samples: ["11", 0], vae: ["1", 2] }),
      "13": node("SaveImage", { images: ["12", 0] }),
    };
    const stages = expectValidSegmentation(comfy(prompt));
    expect(stages).toHaveLength(1);
    expect(stages[0]!.comfyNodes).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"]);
    // Both resident models count: the checkpoint and the upscaler.
    expect(stages[0]!.resources.vramMiB).toBeGreaterThan(Math.ceil(6.5 * 1024) + Math.ceil(0.07 * 1024));
  });

  it("runs independent branches as parallel stages", () => {
    const prompt: Prompt = {
      "1": node("LoadImage", { image: "a.png" }),
      "2": node("UpscaleModelLoader", { model_name: "RealESRGAN_x4plus.pth" }),
      "3": node("ImageUpscaleWithModel", { upscale_model: ["2", 0], image: ["1", 0] }),
      "4": node("UpscaleModelLoader", { model_name: "4x-UltraSharp.pth" }),
      "5": node("ImageUpscaleWithModel", { upscale_model: ["4", 0], image: ["1", 0] }),
      "6": node("SaveImage", { images: ["3", 0] }),
      "7": node("SaveImage", { images: ["5", 0] }),
    };
    const stages = expectValidSegmentation(comfy(prompt));
    // The image loader feeds two stages, so it stays on its own (CPU) and both branches need it.
    expect(stages.map((s) => [s.id, s.needs, s.resources.gpus])).toEqual([
      ["loadimage-1", [], 0],
      ["imageupscalewithmodel-2", ["loadimage-1"], 1],
      ["imageupscalewithmodel-4", ["loadimage-1"], 1],
    ]);
  });

  it("treats unknown class types as GPU-affine", () => {
    const prompt: Prompt = {
      "1": node("LoadImage", { image: "a.png" }),
      "2": node("AcmeFilter", { image: ["1", 0] }),
      "3": node("AcmeFilter", { image: ["2", 0] }),
      "4": node("SaveImage", { images: ["3", 0] }),
    };
    const stages = expectValidSegmentation(comfy(prompt));
    // AcmeFilter's output type is unknown, so 2 and 3 share a GPU; LoadImage is portable and folds in.
    expect(stages.map((s) => s.comfyNodes)).toEqual([["1", "2", "3", "4"]]);
  });

  it("segments a 10,000-node chain without recursion", () => {
    const prompt: Prompt = { "0": node("LoadImage", { image: "a.png" }) };
    for (let i = 1; i < 10_000; i++) prompt[String(i)] = node("Canny", { low_threshold: 0.4, high_threshold: 0.8, image: [String(i - 1), 0] });
    const stages = stagesFor(comfy(prompt));
    // Canny runs on a GPU and passes IMAGE on, so each is its own stage (LoadImage folds into the first).
    expect(stages).toHaveLength(9_999);
    expect(stages[9_998]!.needs).toEqual([stages[9_997]!.id]);
  });

  it("finds strongly connected components iteratively", () => {
    const succ = new Map<number, Set<number>>([
      [0, new Set([1])],
      [1, new Set([2])],
      [2, new Set([0, 3])],
      [3, new Set([4])],
      [4, new Set([3])],
      [5, new Set()],
    ]);
    const components = nonTrivialComponents([0, 1, 2, 3, 4, 5], succ).map((c) => [...c].sort());
    expect(components.sort()).toEqual([[0, 1, 2], [3, 4]]);
  });

  it("orders node ids naturally", () => {
    expect(["10", "2", "57:10", "57:8", "1", "a"].sort(compareNodeIds)).toEqual(["1", "2", "10", "57:8", "57:10", "a"]);
  });

  it("uses observed figures from a cost model", () => {
    const graph = comfy(txt2imgUpscale());
    const model = new CostModel();
    const { estimates } = segmentComfyGraph(graph.comfyNodes!, model);
    model.observe(estimates.get("5")!.key, { durationS: 100, peakVramMiB: 40_000 });
    const [gen] = stagesFor(graph, model);
    expect(gen!.estimate!.durationS).toBeGreaterThan(100);
    expect(gen!.resources.vramMiB).toBe(Math.ceil(6.5 * 1024) + 40_000);
  });
});

describe("stagesFor on native workflows", () => {
  it("keeps declared estimates and fills in the documented default", () => {
    const graph = parseWorkflow(
      nativeDoc([
        { id: "a", estimate: { durationSeconds: 5, modelLoadSeconds: 1 } },
        { id: "b", needs: ["a"], resources: { model: "flux" } },
        { id: "c", needs: ["a"], resources: { gpus: 0 } },
      ]),
    );
    expect(stagesFor(graph).map((s) => [s.id, s.estimate])).toEqual([
      ["a", { durationS: 5, modelLoadS: 1 }],
      ["b", { durationS: 60, modelLoadS: 10 }],
      ["c", { durationS: 60, modelLoadS: 0 }],
    ]);
  });
});
