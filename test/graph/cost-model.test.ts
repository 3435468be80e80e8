import { describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import { ComfyGraphContext, CostModel, identifyModel, observationKey, observeStage, parseWorkflow, stagesFor, workBucket, type ComfyNode } from "../../runtime/graph/index.ts";
import { node, txt2imgUpscale, type Prompt } from "./comfy-builders.ts";

const GIB = 1024;

function nodesOf(prompt: Prompt): ComfyNode[] {
  return [...parseWorkflow(prompt, { format: "comfyui" }).comfyNodes!];
}

function estimate(prompt: Prompt, id: string, model = new CostModel()) {
  const nodes = nodesOf(prompt);
  return model.estimateNode(nodes.find((n) => n.id === id)!, new ComfyGraphContext(nodes));
}

describe("model identification", () => {
  it.each([
    ["flux1-dev.safetensors", "diffusion", "flux", 22, 23],
    ["flux1-dev-fp8.safetensors", "diffusion", "flux", 11, 12],
    ["sd_xl_base_1.0.safetensors", "diffusion", "sdxl", 6, 7],
    ["v1-5-pruned-emaonly.safetensors", "diffusion", "sd1.5", 1.9, 2.1],
    ["sd3_medium.safetensors", "diffusion", "sd3", 4, 5],
    ["hunyuan_video_t2v_720p_bf16.safetensors", "diffusion", "hunyuan-video", 23, 25],
    ["qwen_image_fp8_e4m3fn.safetensors", "diffusion", "qwen-image", 18, 20],
    ["mochi_preview_bf16.safetensors", "diffusion", "mochi", 18, 20],
    ["t5xxl_fp16.safetensors", "text-encoder", "t5-xxl", 9, 9.5],
    ["t5xxl_fp8_e4m3fn.safetensors", "text-encoder", "t5-xxl", 4.4, 4.7],
    ["clip_l.safetensors", "text-encoder", "clip-l", 0.2, 0.3],
    ["qwen_image_vae.safetensors", "vae", "vae", 0.3, 0.4],
  ] as const)("%s is %s/%s of %d to %d GiB", (name, kind, family, low, high) => {
    const m = identifyModel(name, kind);
    expect(m.family).toBe(family);
    expect(m.kind).toBe(kind);
    expect(m.sizeMiB / GIB).toBeGreaterThanOrEqual(low);
    expect(m.sizeMiB / GIB).toBeLessThanOrEqual(high);
  });

  it("halves the size when the loader loads weights as fp8", () => {
    const full = identifyModel("flux1-dev.safetensors", "diffusion");
    const fp8 = identifyModel("flux1-dev.safetensors", "diffusion", "fp8_e4m3fn");
    expect(fp8.sizeMiB).toBe(Math.ceil(full.sizeMiB / 2));
  });

  it("sizes an unknown model from a parameter count in its name, else by default", () => {
    expect(identifyModel("acme/chat-13b-instruct", "llm")).toMatchObject({ source: "parameters", family: "13b" });
    expect(identifyModel("acme/chat-13b-instruct", "llm").sizeMiB / GIB).toBeCloseTo(24.2, 0);
    expect(identifyModel("mystery.safetensors", "diffusion")).toMatchObject({ source: "default", family: "unknown" });
  });
});

describe("node estimates", () => {
  it("scales a sampler's time with steps and resolution, and reads its model up the MODEL link", () => {
    const base = estimate(txt2imgUpscale({ steps: 20 }), "5");
    const moreSteps = estimate(txt2imgUpscale({ steps: 40 }), "5");
    const larger = estimate(txt2imgUpscale({ width: 2048, height: 1024 }), "5");
    expect(base).toMatchObject({ gpu: true, model: "sd_xl_base_1.0.safetensors", estimated: "table" });
    // 0.2 s overhead + steps × 2 evaluations (cfg 7) × 0.08 s per megapixel.
    expect(base.durationS).toBeCloseTo(0.2 + 20 * 2 * 0.08, 6);
    expect(moreSteps.durationS - 0.2).toBeCloseTo(2 * (base.durationS - 0.2), 6);
    expect(larger.durationS - 0.2).toBeCloseTo(2 * (base.durationS - 0.2), 6);
    expect(larger.vramMiB).toBeGreaterThan(base.vramMiB);
  });

  it("finds SamplerCustomAdvanced's steps in the scheduler its sigmas come from", () => {
    const prompt: Prompt = {
      "1": node("UNETLoader", { unet_name: "flux1-dev.safetensors", weight_dtype: "default" }),
      "2": node("BasicScheduler", { scheduler: "simple", steps: 10, denoise: 1, model: ["1", 0] }),
      "3": node("BasicGuider", { model: ["1", 0], conditioning: ["6", 0] }),
      "4": node("EmptySD3LatentImage", { width: 1024, height: 1024, batch_size: 2 }),
      "5": node("SamplerCustomAdvanced", { noise: ["7", 0], guider: ["3", 0], sampler: ["8", 0], sigmas: ["2", 0], latent_image: ["4", 0] }),
      "6": node("CLIPTextEncode", { text: "x", clip: ["9", 0] }),
      "7": node("RandomNoise", { noise_seed: 1 }),
      "8": node("KSamplerSelect", { sampler_name: "euler" }),
      "9": node("DualCLIPLoader", { clip_name1: "t5xxl_fp16.safetensors", clip_name2: "clip_l.safetensors", type: "flux" }),
    };
    const e = estimate(prompt, "5");
    expect(e.model).toBe("flux1-dev.safetensors");
    // 10 steps × 1 evaluation (BasicGuider) × 0.25 s × 2 megapixels (batch of 2).
    expect(e.durationS).toBeCloseTo(0.2 + 10 * 0.25 * 2, 6);
    const encoder = estimate(prompt, "6");
    expect(encoder.model).toBe("t5xxl_fp16.safetensors+clip_l.safetensors");
  });

  it("makes a loader carry the weights it loads, with a load time", () => {
    const e = estimate(txt2imgUpscale(), "1");
    expect(e.loads).toHaveLength(1);
    expect(e.loads[0]).toMatchObject({ name: "sd_xl_base_1.0.safetensors", family: "sdxl", kind: "diffusion" });
    expect(e.loads[0]!.loadS).toBeCloseTo(1 + 6.5 / 2, 1);
    expect(e.durationS).toBe(0);
  });

  it("marks unknown class types as default estimates that need a GPU", () => {
    const e = estimate({ "1": node("AcmeMagicNode", { strength: 3 }) }, "1");
    expect(e).toMatchObject({ gpu: true, estimated: "default", durationS: 2, vramMiB: 2 * GIB });
  });

  it("knows CPU-only nodes", () => {
    expect(estimate(txt2imgUpscale(), "9").gpu).toBe(false);
    expect(estimate(txt2imgUpscale(), "4").gpu).toBe(false);
  });

  it("estimates a node alone from its own inputs when no graph is given", () => {
    const e = new CostModel().estimateNode(nodesOf({ "1": node("EmptyLatentImage", { width: 512, height: 512, batch_size: 1 }) })[0]!);
    expect(e.key).toBe("EmptyLatentImage|-|0");
  });
});

describe("EWMA refinement", () => {
  it("starts from the first observation and moves by alpha toward each new one", () => {
    const model = new CostModel();
    expect(model.alpha).toBe(0.3);
    model.observe("k", { durationS: 10, peakVramMiB: 1000 });
    expect(model.observed("k")).toEqual({ durationS: 10, peakVramMiB: 1000, samples: 1 });
    model.observe("k", { durationS: 20, peakVramMiB: 2000 });
    expect(model.observed("k")!.durationS).toBeCloseTo(13, 10); // 10 + 0.3 × (20 − 10)
    expect(model.observed("k")!.peakVramMiB).toBeCloseTo(1300, 10);
    model.observe("k", { durationS: 20, peakVramMiB: 2000 });
    expect(model.observed("k")!.durationS).toBeCloseTo(15.1, 10); // 13 + 0.3 × 7
    expect(model.observed("k")!.samples).toBe(3);
  });

  it("uses a configured alpha", () => {
    const model = new CostModel({ alpha: 0.5 });
    model.observe("k", { durationS: 4, peakVramMiB: 0 });
    model.observe("k", { durationS: 8, peakVramMiB: 0 });
    expect(model.observed("k")!.durationS).toBe(6);
  });

  it("refuses an alpha outside (0, 1] and bad observations", () => {
    expect(() => new CostModel({ alpha: 0 })).toThrow(ValidationError);
    expect(() => new CostModel({ alpha: 1.5 })).toThrow(/alpha/);
    const model = new CostModel();
    expect(() => model.observe("k", { durationS: -1, peakVramMiB: 0 })).toThrow(/durationS/);
    expect(() => model.observe("k", { durationS: 1, peakVramMiB: Number.NaN })).toThrow(/peakVramMiB/);
    expect(() => model.observe("", { durationS: 1, peakVramMiB: 1 })).toThrow(/key/);
  });

  it("feeds observations back into estimates of the same class, model and resolution bucket", () => {
    const model = new CostModel();
    const before = estimate(txt2imgUpscale(), "5", model);
    expect(before.key).toBe(observationKey("KSampler", "sd_xl_base_1.0.safetensors", 1));
    model.observe(before.key, { durationS: 9, peakVramMiB: 3000 });
    const after = estimate(txt2imgUpscale(), "5", model);
    expect(after).toMatchObject({ durationS: 9, vramMiB: 3000, estimated: "observed" });
    // 1000×1000 falls in the same bucket as 1024×1024; 2048×2048 does not.
    expect(estimate(txt2imgUpscale({ width: 1000, height: 1000 }), "5", model).estimated).toBe("observed");
    expect(estimate(txt2imgUpscale({ width: 2048, height: 2048 }), "5", model).estimated).toBe("table");
  });

  it("buckets work by powers of two", () => {
    expect(workBucket(1)).toBe("2^0");
    expect(workBucket(0.95)).toBe("2^0");
    expect(workBucket(4)).toBe("2^2");
    expect(workBucket(0.25)).toBe("2^-2");
    expect(workBucket(0)).toBe("0");
  });

  it("round-trips through snapshot and restore, in a stable order", () => {
    const model = new CostModel();
    model.observe("b", { durationS: 2, peakVramMiB: 20 });
    model.observe("a", { durationS: 1, peakVramMiB: 10 });
    const snapshot = model.snapshot();
    expect(snapshot.entries.map((e) => e.key)).toEqual(["a", "b"]);
    const copy = new CostModel();
    copy.restore(JSON.parse(JSON.stringify(snapshot)));
    expect(copy.snapshot()).toEqual(snapshot);
    expect(copy.observed("b")).toEqual({ durationS: 2, peakVramMiB: 20, samples: 1 });
  });

  it("refuses a malformed snapshot, naming the field", () => {
    const model = new CostModel();
    try {
      model.restore({ version: 1, alpha: 0.3, entries: [{ key: "a", durationS: -1, peakVramMiB: 0, samples: 1 }] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues[0]!.field).toBe("entries[0].durationS");
    }
    expect(() => model.restore({ version: 2, alpha: 0.3, entries: [] })).toThrow(/version/);
  });
});

describe("observeStage", () => {
  it("shares a stage's measured time and memory over its nodes so the stage estimate follows", () => {
    const graph = parseWorkflow(txt2imgUpscale(), { format: "comfyui", name: "t" });
    const model = new CostModel();
    const [gen] = stagesFor(graph, model);
    const residentMiB = Math.ceil(6.5 * 1024);
    const workingMiB = gen!.resources.vramMiB - residentMiB;
    const keys = observeStage(model, graph, gen!, { durationS: 2 * gen!.estimate!.durationS, peakVramMiB: residentMiB + 3 * workingMiB });
    expect(keys).toHaveLength(6);
    const [after] = stagesFor(graph, model);
    expect(after!.estimate!.durationS).toBeCloseTo(2 * gen!.estimate!.durationS, 2);
    expect(after!.resources.vramMiB).toBeCloseTo(residentMiB + 3 * workingMiB, -1);
    // A second, identical run moves nothing; a faster one moves the average by alpha.
    observeStage(model, graph, gen!, { durationS: 2 * gen!.estimate!.durationS, peakVramMiB: residentMiB + 3 * workingMiB });
    expect(stagesFor(graph, model)[0]!.estimate!.durationS).toBeCloseTo(2 * gen!.estimate!.durationS, 2);
  });

  it("refuses native graphs, foreign stages and negative measurements", () => {
    const graph = parseWorkflow(txt2imgUpscale(), { format: "comfyui", name: "t" });
    const model = new CostModel();
    const stage = stagesFor(graph)[0]!;
    expect(() => observeStage(model, { ...graph, format: "native" }, stage, { durationS: 1, peakVramMiB: 1 })).toThrow(/ComfyUI/);
    expect(() => observeStage(model, graph, { ...stage, comfyNodes: ["999"] }, { durationS: 1, peakVramMiB: 1 })).toThrow(/stagesFor/);
    expect(() => observeStage(model, graph, stage, { durationS: -1, peakVramMiB: 1 })).toThrow(/zero or more/);
  });
});
