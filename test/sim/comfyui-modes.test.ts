import { describe, expect, it } from "vitest";
import { parseWorkflow, type WorkflowGraph } from "../../runtime/graph/index.ts";
import { comfyPromptsFromDir, compareComfyModes, type ComfyModeFigures } from "../../runtime/sim/index.ts";
import { node, txt2imgUpscale, type Prompt } from "../graph/comfy-builders.ts";
import { chainDoc } from "../graph/helpers.ts";
import { sharedDataDir } from "../support/shared.ts";

const comfy = (name: string, prompt: Prompt): WorkflowGraph => parseWorkflow(prompt, { format: "comfyui", name });

/** Three small prompts: two of two segments (sampler, then an upscale model), one of one. */
const prompts = [
  comfy("upscale-small", txt2imgUpscale({ steps: 20 })),
  comfy("upscale-large", txt2imgUpscale({ steps: 40, width: 1536, height: 1536 })),
  comfy("plain", {
    "1": node("CheckpointLoaderSimple", { ckpt_name: "v1-5-pruned-emaonly.safetensors" }),
    "2": node("CLIPTextEncode", { text: "a boat", clip: ["1", 1] }),
    "3": node("EmptyLatentImage", { width: 512, height: 512, batch_size: 1 }),
    "4": node("KSampler", { seed: 1, steps: 20, cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["1", 0], positive: ["2", 0], negative: ["2", 0], latent_image: ["3", 0] }),
    "5": node("VAEDecode", { samples: ["4", 0], vae: ["1", 2] }),
    "6": node("SaveImage", { images: ["5", 0], filename_prefix: "out" }),
  }),
];

function expectFinite(figures: ComfyModeFigures, runs: number): void {
  for (const key of ["makespan_s", "interactive_p50_s", "interactive_p99_s", "batch_makespan_s", "gpu_busy_pct"] as const) {
    expect(Number.isFinite(figures[key]), `${key} = ${figures[key]}`).toBe(true);
    expect(figures[key]!).toBeGreaterThan(0);
  }
  expect(figures.runs_completed + figures.runs_rejected).toBe(runs);
}

describe("segmented against whole-graph scheduling", () => {
  it("returns finite makespan and interactive latency for both modes, the same for the same inputs", () => {
    const options = { prompts, gpus: 2, rounds: 4, seed: 7 };
    const result = compareComfyModes(options);
    expect(result).toMatchObject({ gpus: 2, prompts: 3, runs: 12, interactive_runs: 3, seed: 7 });
    expectFinite(result.segmented, 12);
    expectFinite(result.whole_graph, 12);
    expect(result.segmented.runs_completed).toBe(12);
    // Two of the three prompts have two segments; whole-graph runs every prompt as one stage.
    expect(result.segmented.stages).toBe(4 * (2 + 2 + 1));
    expect(result.whole_graph.stages).toBe(12);
    expect(compareComfyModes(options)).toEqual(result);
  });

  it("mixes interactive and batch runs as asked, and a seed changes the arrivals", () => {
    expect(compareComfyModes({ prompts, rounds: 10, interactiveShare: 0.5 }).interactive_runs).toBe(15);
    const none = compareComfyModes({ prompts, interactiveShare: 0 });
    expect(none.interactive_runs).toBe(0);
    expect(none.segmented.interactive_p99_s).toBeNull();
    const spread = { prompts, rounds: 5, gpus: 1, meanGapS: 3 };
    expect(compareComfyModes({ ...spread, seed: 1 })).not.toEqual(compareComfyModes({ ...spread, seed: 2 }));
  });

  it("names the option at fault", () => {
    expect(() => compareComfyModes({ prompts: [] })).toThrow(/^prompts: give at least one/);
    expect(() => compareComfyModes({ prompts, gpus: 0 })).toThrow(/^gpus: must be a positive number/);
    expect(() => compareComfyModes({ prompts, rounds: 1.5 })).toThrow(/^rounds:/);
    expect(() => compareComfyModes({ prompts, interactiveShare: 2 })).toThrow(/^interactiveShare:/);
    expect(() => compareComfyModes({ prompts, meanGapS: -1 })).toThrow(/^meanGapS:/);
    expect(() => compareComfyModes({ prompts, noise: 1 })).toThrow(/^noise:/);
    const native = parseWorkflow(chainDoc(2));
    expect(() => compareComfyModes({ prompts: [native] })).toThrow(/^prompts: every workflow must be a ComfyUI prompt/);
  });
});

const comfyDir = sharedDataDir("comfyui");

describe.skipIf(!comfyDir)("the shared ComfyUI prompts on 8 simulated GPUs", () => {
  it("gives finite figures for both modes, deterministically", () => {
    const { prompts: shared, skipped } = comfyPromptsFromDir(comfyDir!);
    expect(skipped).toEqual([]);
    expect(shared.length).toBeGreaterThanOrEqual(50);
    const result = compareComfyModes({ prompts: shared, gpus: 8 });
    expect(result.runs).toBe(shared.length);
    expectFinite(result.segmented, shared.length);
    expectFinite(result.whole_graph, shared.length);
    expect(result.segmented.stages).toBeGreaterThan(result.whole_graph.stages);
    // The same prompts fit or not whatever the mode: a whole prompt needs what its largest segment needs.
    expect(result.whole_graph.runs_rejected).toBe(result.segmented.runs_rejected);
    expect(compareComfyModes({ prompts: shared, gpus: 8 })).toEqual(result);
  });
});
