/** Small ComfyUI prompts for tests, built node by node. */
export type Prompt = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

export const node = (class_type: string, inputs: Record<string, unknown> = {}) => ({ class_type, inputs });

/** loader → text encode → sampler → VAE decode → upscale with model → save. */
export function txt2imgUpscale(opts: { steps?: number; width?: number; height?: number } = {}): Prompt {
  return {
    "1": node("CheckpointLoaderSimple", { ckpt_name: "sd_xl_base_1.0.safetensors" }),
    "2": node("CLIPTextEncode", { text: "a lighthouse at dusk", clip: ["1", 1] }),
    "3": node("CLIPTextEncode", { text: "blurry", clip: ["1", 1] }),
    "4": node("EmptyLatentImage", { width: opts.width ?? 1024, height: opts.height ?? 1024, batch_size: 1 }),
    "5": node("KSampler", { seed: 7, steps: opts.steps ?? 20, cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["1", 0], positive: ["2", 0], negative: ["3", 0], latent_image: ["4", 0] }),
    "6": node("VAEDecode", { samples: ["5", 0], vae: ["1", 2] }),
    "7": node("UpscaleModelLoader", { model_name: "RealESRGAN_x4plus.pth" }),
    "8": node("ImageUpscaleWithModel", { upscale_model: ["7", 0], image: ["6", 0] }),
    "9": node("SaveImage", { filename_prefix: "out", images: ["8", 0] }),
  };
}
