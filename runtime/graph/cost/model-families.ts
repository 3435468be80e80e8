/**
 * Model files recognized by name: which family a checkpoint, diffusion model, text encoder or helper
 * model belongs to, how much VRAM its weights take, and (for diffusion models) how long one sampling
 * step takes. Figures are rough public numbers for one H100-class GPU; the cost model refines them from
 * observed runs.
 */

export type ModelKind = "diffusion" | "text-encoder" | "vae" | "controlnet" | "upscaler" | "clip-vision" | "style-model" | "lora" | "llm" | "unknown";

export interface ModelFamily {
  readonly family: string;
  readonly kind: ModelKind;
  /** Size of the weights at 16-bit precision, in GiB. */
  readonly fp16GiB: number;
  /** Seconds per sampling step per work unit (a megapixel of image, or of one video frame). */
  readonly stepSecondsPerUnit?: number;
  /** Activation memory per work unit while sampling, in GiB. */
  readonly workingGiBPerUnit?: number;
  /** Video models: work is counted per frame. */
  readonly video?: boolean;
}

interface FamilyRule extends ModelFamily {
  readonly pattern: RegExp;
}

const image = (family: string, fp16GiB: number, stepSecondsPerUnit: number, workingGiBPerUnit = 1.5): ModelFamily => ({
  family,
  kind: "diffusion",
  fp16GiB,
  stepSecondsPerUnit,
  workingGiBPerUnit,
});
const video = (family: string, fp16GiB: number, stepSecondsPerUnit: number, workingGiBPerUnit = 0.15): ModelFamily => ({
  family,
  kind: "diffusion",
  fp16GiB,
  stepSecondsPerUnit,
  workingGiBPerUnit,
  video: true,
});
const helper = (family: string, kind: ModelKind, fp16GiB: number): ModelFamily => ({ family, kind, fp16GiB });

/** First match wins, so specific names come before general ones. */
const RULES: readonly FamilyRule[] = [
  // Video diffusion models
  { pattern: /hunyuan.?video/, ...video("hunyuan-video", 24, 0.17) },
  { pattern: /ltx.?v|ltx-video/, ...video("ltxv", 9, 0.01, 0.05) },
  { pattern: /mochi(?!_vae)/, ...video("mochi", 19, 0.28) },
  { pattern: /cosmos_predict2.*2b|cosmos.*predict2/, ...video("cosmos-predict2-2b", 4, 0.06) },
  { pattern: /cosmos.*14b/, ...video("cosmos-14b", 28, 0.5) },
  { pattern: /cosmos(?!_cv)/, ...video("cosmos-7b", 14, 0.3) },
  { pattern: /wan2?[._]?[12].*1\.3b/, ...video("wan-1.3b", 2.6, 0.05) },
  { pattern: /wan2?[._]?[12](?!.*vae)/, ...video("wan-14b", 28, 0.5) },
  // Image diffusion models
  { pattern: /flux2|flux\.2/, ...image("flux2", 61, 0.8, 2.5) },
  // NF4 checkpoints bundle the text encoders; 38 GiB at 16 bits is about 11 GiB at 4 bits.
  { pattern: /flux.*nf4|nf4.*flux/, ...image("flux", 38, 0.3, 2) },
  { pattern: /flux.*redux/, ...helper("flux-redux", "style-model", 0.13) },
  { pattern: /flux.*controlnet|controlnet.*flux/, ...helper("flux-controlnet", "controlnet", 6.2) },
  { pattern: /flux/, ...image("flux", 22.2, 0.25, 2) },
  { pattern: /chroma/, ...image("chroma", 16.6, 0.2, 2) },
  { pattern: /hidream/, ...image("hidream", 32, 0.6, 2.5) },
  { pattern: /qwen[-_]?image/, ...image("qwen-image", 38, 0.6, 2.5) },
  { pattern: /hunyuan_?image.*refiner/, ...image("hunyuan-image-refiner", 32, 0.5, 2.5) },
  { pattern: /hunyuan_?image/, ...image("hunyuan-image", 32, 0.6, 2.5) },
  { pattern: /hunyuan_?dit/, ...image("hunyuan-dit", 8, 0.15) },
  { pattern: /aura_?flow/, ...image("auraflow", 16, 0.25) },
  { pattern: /lumina/, ...image("lumina2", 10, 0.15) },
  { pattern: /omnigen/, ...image("omnigen2", 7.5, 0.4) },
  { pattern: /z_image/, ...image("z-image", 11.5, 0.12) },
  { pattern: /ovis_image/, ...image("ovis-image", 14, 0.3) },
  { pattern: /sd3\.5.*large|sd3\.5_large/, ...image("sd3.5-large", 16, 0.25) },
  { pattern: /sd3/, ...image("sd3", 4.3, 0.08) },
  { pattern: /stable_audio/, ...image("stable-audio", 4.5, 0.01, 0.2) },
  { pattern: /controlnet|control_/, ...helper("controlnet", "controlnet", 2.3) },
  { pattern: /sd_xl|sdxl|xl_base|xl_refiner|_xl_|xl[-_]v?\d/, ...image("sdxl", 6.5, 0.08) },
  { pattern: /v1-5|sd15|sd_1\.5|sd-v1|v2-1|dreamshaper|cardos|anything|realistic|deliberate/, ...image("sd1.5", 2, 0.06, 1) },
  // Text encoders
  { pattern: /umt5/, ...helper("umt5-xxl", "text-encoder", 10.6) },
  { pattern: /t5xxl|t5_xxl|t5-v1_1-xxl/, ...helper("t5-xxl", "text-encoder", 9.1) },
  { pattern: /byt5/, ...helper("byt5-small", "text-encoder", 0.4) },
  { pattern: /t5_base|t5-base/, ...helper("t5-base", "text-encoder", 0.4) },
  { pattern: /clip_g/, ...helper("clip-g", "text-encoder", 1.3) },
  { pattern: /clip_l/, ...helper("clip-l", "text-encoder", 0.23) },
  { pattern: /llava_llama3/, ...helper("llava-llama3-8b", "text-encoder", 15) },
  { pattern: /llama_3\.1_8b|llama.*8b/, ...helper("llama-3.1-8b", "text-encoder", 15) },
  { pattern: /mistral_3_small|mistral.*24b/, ...helper("mistral-small-24b", "text-encoder", 45) },
  { pattern: /qwen_2\.5_vl/, ...helper("qwen2.5-vl-7b", "text-encoder", 15.5) },
  { pattern: /qwen_3_4b|qwen3.*4b/, ...helper("qwen3-4b", "text-encoder", 7.5) },
  { pattern: /gemma/, ...helper("gemma-2b", "text-encoder", 5) },
  { pattern: /ovis_2\.5/, ...helper("ovis2.5", "text-encoder", 4.3) },
  { pattern: /sigclip|clip_vision|clip-vit/, ...helper("clip-vision", "clip-vision", 0.8) },
  // VAEs and small helpers
  { pattern: /hunyuan_video_vae/, ...helper("hunyuan-video-vae", "vae", 0.5) },
  { pattern: /mochi_vae/, ...helper("mochi-vae", "vae", 0.9) },
  { pattern: /cosmos_cv/, ...helper("cosmos-vae", "vae", 0.4) },
  { pattern: /vae|^ae\./, ...helper("vae", "vae", 0.33) },
  { pattern: /esrgan|upscale|4x|2x|swinir|hat_/, ...helper("esrgan", "upscaler", 0.07) },
  { pattern: /lora|lightning/, ...helper("lora", "lora", 0.3) },
  // Language models by Hugging Face repository name
  { pattern: /phi-?3-mini|phi-?4-mini/, ...helper("phi-mini", "llm", 7.2) },
  { pattern: /nllb|m2m100/, ...helper("nllb", "llm", 2.6) },
];

/** Multiplies the 16-bit size for quantized or full-precision files. */
function precisionFactor(name: string): number {
  if (/q4|nf4|int4|4bit/.test(name)) return 0.3;
  if (/q5/.test(name)) return 0.36;
  if (/q6/.test(name)) return 0.42;
  if (/q8|fp8|e4m3|e5m2|int8|8bit/.test(name)) return 0.5;
  if (/fp32|f32/.test(name)) return 2;
  return 1;
}

/** Billions of parameters in a name like "llava-onevision-qwen2-7b" or "Cosmos-1_0-Diffusion-7B". */
function paramsFromName(name: string): number | undefined {
  const match = /(?:^|[^a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z])/.exec(name);
  return match ? Number(match[1]) : undefined;
}

export interface IdentifiedModel extends ModelFamily {
  /** The file or repository name as written in the workflow. */
  readonly name: string;
  /** VRAM the weights take once loaded, in MiB. */
  readonly sizeMiB: number;
  /** How the family was found. */
  readonly source: "table" | "parameters" | "default";
}

/** Size assumed for a model file nothing is known about. */
export const UNKNOWN_MODEL_GIB = 4;

/**
 * Identifies a model file by name. `weightDtype` is the loader's dtype override (UNETLoader's
 * `weight_dtype`), which changes the loaded size; `kindHint` says what the loader loads.
 */
export function identifyModel(name: string, kindHint: ModelKind = "unknown", weightDtype?: string): IdentifiedModel {
  // Graphs name the same few files over and over; matching ~70 patterns each time shows in profiles.
  const cacheKey = `${kindHint}\u0000${weightDtype ?? ""}\u0000${name}`;
  const cached = identified.get(cacheKey);
  if (cached) return cached;
  const model = identifyUncached(name, kindHint, weightDtype);
  if (identified.size >= MAX_CACHED) identified.clear();
  identified.set(cacheKey, model);
  return model;
}

const MAX_CACHED = 4096;
const identified = new Map<string, IdentifiedModel>();

function identifyUncached(name: string, kindHint: ModelKind, weightDtype: string | undefined): IdentifiedModel {
  const lower = name.toLowerCase();
  // A loader says what it loads: a VAELoader's "qwen_image_vae" is a VAE, not the Qwen-Image model.
  const rule = RULES.find((r) => (kindHint === "unknown" || r.kind === kindHint) && r.pattern.test(lower));
  const dtype = weightDtype && weightDtype !== "default" ? precisionFactor(weightDtype.toLowerCase()) : 1;
  const factor = dtype !== 1 ? dtype : precisionFactor(lower);
  const sized = (fp16GiB: number) => Math.ceil(fp16GiB * factor * 1024);
  if (rule) {
    const { pattern: _pattern, ...family } = rule;
    return { ...family, name, sizeMiB: sized(family.fp16GiB), source: "table" };
  }
  const params = paramsFromName(lower);
  if (params !== undefined && params > 0 && params < 1000) {
    // 16-bit weights take two bytes a parameter.
    const fp16GiB = (params * 2e9) / 1024 ** 3;
    return { family: `${params}b`, kind: kindHint, fp16GiB, name, sizeMiB: sized(fp16GiB), source: "parameters" };
  }
  const fp16GiB = helperDefaultGiB(kindHint);
  return { family: "unknown", kind: kindHint, fp16GiB, name, sizeMiB: sized(fp16GiB), source: "default" };
}

function helperDefaultGiB(kind: ModelKind): number {
  switch (kind) {
    case "lora":
      return 0.3;
    case "upscaler":
      return 0.07;
    case "vae":
      return 0.33;
    case "controlnet":
      return 2.3;
    case "clip-vision":
      return 0.8;
    case "style-model":
      return 0.13;
    default:
      return UNKNOWN_MODEL_GIB;
  }
}

/** Seconds to bring weights from local disk onto a GPU: about 2 GiB/s plus a fixed second. */
export function loadSecondsFor(sizeMiB: number): number {
  return 1 + sizeMiB / 1024 / 2;
}
