/** Prompts for the ComfyUI executor's tests: a text-to-image prompt that the segmenter cuts in two GPU stages. */
import { parseWorkflow, stagesFor, type Stage, type WorkflowGraph } from "../../../runtime/graph/index.ts";

/** Checkpoint → sample → decode (stage 1), then a 4× upscale model → save (stage 2). 64×64 → 256×256. */
export function twoSegmentPrompt(ckpt = "v1-5-pruned-emaonly.safetensors"): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: ckpt } },
    "5": { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
    "6": { class_type: "CLIPTextEncode", inputs: { text: "a lighthouse at dusk", clip: ["4", 1] } },
    "7": { class_type: "CLIPTextEncode", inputs: { text: "", clip: ["4", 1] } },
    "3": {
      class_type: "KSampler",
      inputs: { model: ["4", 0], seed: 7, steps: 4, cfg: 7, sampler_name: "euler", scheduler: "normal", positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0], denoise: 1 },
    },
    "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    "10": { class_type: "UpscaleModelLoader", inputs: { model_name: "RealESRGAN_x4plus.pth" } },
    "11": { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["10", 0], image: ["8", 0] } },
    "9": { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["11", 0] } },
  };
}

export function segmented(prompt: unknown): { graph: WorkflowGraph; sample: Stage; upscale: Stage } {
  const graph = parseWorkflow(prompt);
  const stages = stagesFor(graph);
  const sample = stages.find((s) => s.comfyNodes?.includes("3"));
  const upscale = stages.find((s) => s.comfyNodes?.includes("9"));
  if (stages.length !== 2 || !sample || !upscale || sample === upscale) throw new Error(`expected two segments, got ${stages.map((s) => s.id).join(", ")}`);
  return { graph, sample, upscale };
}
