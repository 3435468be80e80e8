/**
 * What each ComfyUI node class outputs, by output index, and which of those types tie the producer
 * and the consumer to one GPU. Types that hold weights or GPU tensors (MODEL, CLIP, VAE, LATENT,
 * CONDITIONING, …) must stay on the GPU that made them; plain data (IMAGE, MASK, AUDIO, strings and
 * numbers) can be copied to another GPU or machine cheaply.
 */
import { withoutPrototype } from "../lookup.ts";

const LOADER_CHECKPOINT = ["MODEL", "CLIP", "VAE"];

/** Output types by class type, in output-index order. */
// Looked up by class types that clients send: no prototype, so "__proto__" or "constructor" finds nothing.
export const OUTPUT_TYPES: Readonly<Record<string, readonly string[]>> = withoutPrototype({
  // Loaders
  CheckpointLoaderSimple: LOADER_CHECKPOINT,
  CheckpointLoader: LOADER_CHECKPOINT,
  CheckpointLoaderNF4: LOADER_CHECKPOINT,
  unCLIPCheckpointLoader: [...LOADER_CHECKPOINT, "CLIP_VISION"],
  ImageOnlyCheckpointLoader: ["MODEL", "CLIP_VISION", "VAE"],
  UNETLoader: ["MODEL"],
  UnetLoaderGGUF: ["MODEL"],
  CLIPLoader: ["CLIP"],
  CLIPLoaderGGUF: ["CLIP"],
  DualCLIPLoader: ["CLIP"],
  DualCLIPLoaderGGUF: ["CLIP"],
  TripleCLIPLoader: ["CLIP"],
  QuadrupleCLIPLoader: ["CLIP"],
  VAELoader: ["VAE"],
  LoraLoader: ["MODEL", "CLIP"],
  LoraLoaderModelOnly: ["MODEL"],
  ControlNetLoader: ["CONTROL_NET"],
  ControlNetLoaderWeights: ["CONTROL_NET"],
  DiffControlNetLoader: ["CONTROL_NET"],
  UpscaleModelLoader: ["UPSCALE_MODEL"],
  CLIPVisionLoader: ["CLIP_VISION"],
  StyleModelLoader: ["STYLE_MODEL"],
  TransformersLoader: ["MODEL"],
  // Model patches
  ModelSamplingAuraFlow: ["MODEL"],
  ModelSamplingFlux: ["MODEL"],
  ModelSamplingSD3: ["MODEL"],
  ModelSamplingDiscrete: ["MODEL"],
  ModelSamplingContinuousEDM: ["MODEL"],
  CFGNorm: ["MODEL"],
  DifferentialDiffusion: ["MODEL"],
  TorchCompileModel: ["MODEL"],
  GroupOffload: ["MODEL"],
  FreeU: ["MODEL"],
  FreeU_V2: ["MODEL"],
  CLIPSetLastLayer: ["CLIP"],
  SetClipHooks: ["CLIP"],
  T5TokenizerOptions: ["CLIP"],
  // Hooks (LoRA schedules bound to model weights)
  CreateHookLora: ["HOOKS"],
  CreateHookModelAsLora: ["HOOKS"],
  CombineHooks2: ["HOOKS"],
  SetHookKeyframes: ["HOOKS"],
  CreateHookKeyframesInterpolated: ["HOOK_KEYFRAMES"],
  // Conditioning
  CLIPTextEncode: ["CONDITIONING"],
  CLIPTextEncodeSD3: ["CONDITIONING"],
  CLIPTextEncodeSDXL: ["CONDITIONING"],
  CLIPTextEncodeFlux: ["CONDITIONING"],
  TextEncodeQwenImageEdit: ["CONDITIONING"],
  ConditioningCombine: ["CONDITIONING"],
  ConditioningConcat: ["CONDITIONING"],
  ConditioningAverage: ["CONDITIONING"],
  ConditioningSetArea: ["CONDITIONING"],
  ConditioningSetMask: ["CONDITIONING"],
  ConditioningSetTimestepRange: ["CONDITIONING"],
  ConditioningZeroOut: ["CONDITIONING"],
  FluxGuidance: ["CONDITIONING"],
  ReferenceLatent: ["CONDITIONING"],
  StyleModelApply: ["CONDITIONING"],
  CLIPVisionEncode: ["CLIP_VISION_OUTPUT"],
  PairConditioningSetProperties: ["CONDITIONING", "CONDITIONING"],
  PairConditioningSetPropertiesAndCombine: ["CONDITIONING", "CONDITIONING"],
  ControlNetApply: ["CONDITIONING"],
  ControlNetApplyAdvanced: ["CONDITIONING", "CONDITIONING"],
  ControlNetApplySD3: ["CONDITIONING", "CONDITIONING"],
  SetUnionControlNetType: ["CONTROL_NET"],
  InpaintModelConditioning: ["CONDITIONING", "CONDITIONING", "LATENT"],
  InstructPixToPixConditioning: ["CONDITIONING", "CONDITIONING", "LATENT"],
  LTXVImgToVideo: ["CONDITIONING", "CONDITIONING", "LATENT"],
  LTXVConditioning: ["CONDITIONING", "CONDITIONING"],
  HunyuanRefinerLatent: ["CONDITIONING", "CONDITIONING", "LATENT"],
  // Latents
  EmptyLatentImage: ["LATENT"],
  EmptySD3LatentImage: ["LATENT"],
  EmptyFlux2LatentImage: ["LATENT"],
  EmptyHunyuanImageLatent: ["LATENT"],
  EmptyHunyuanLatentVideo: ["LATENT"],
  EmptyLTXVLatentVideo: ["LATENT"],
  EmptyMochiLatentVideo: ["LATENT"],
  EmptyCosmosLatentVideo: ["LATENT"],
  EmptyLatentAudio: ["LATENT"],
  CosmosImageToVideoLatent: ["LATENT"],
  CosmosPredict2ImageToVideoLatent: ["LATENT"],
  LatentUpscale: ["LATENT"],
  LatentUpscaleBy: ["LATENT"],
  LatentComposite: ["LATENT"],
  SetLatentNoiseMask: ["LATENT"],
  RepeatLatentBatch: ["LATENT"],
  VAEEncode: ["LATENT"],
  VAEEncodeForInpaint: ["LATENT"],
  // Sampling
  KSampler: ["LATENT"],
  KSamplerAdvanced: ["LATENT"],
  SamplerCustom: ["LATENT", "LATENT"],
  SamplerCustomAdvanced: ["LATENT", "LATENT"],
  BasicGuider: ["GUIDER"],
  CFGGuider: ["GUIDER"],
  DualCFGGuider: ["GUIDER"],
  BasicScheduler: ["SIGMAS"],
  KarrasScheduler: ["SIGMAS"],
  AlignYourStepsScheduler: ["SIGMAS"],
  Flux2Scheduler: ["SIGMAS"],
  LTXVScheduler: ["SIGMAS"],
  SDTurboScheduler: ["SIGMAS"],
  KSamplerSelect: ["SAMPLER"],
  SamplerEulerAncestral: ["SAMPLER"],
  SamplerEulerCFGpp: ["SAMPLER"],
  RandomNoise: ["NOISE"],
  DisableNoise: ["NOISE"],
  // Decoding and pixels
  VAEDecode: ["IMAGE"],
  VAEDecodeTiled: ["IMAGE"],
  VAEDecodeAudio: ["AUDIO"],
  ImageUpscaleWithModel: ["IMAGE"],
  LoadImage: ["IMAGE", "MASK"],
  LoadImageMask: ["MASK"],
  LoadImageFromURL: ["IMAGE", "MASK"],
  ImageRequestParameter: ["IMAGE"],
  ImageScale: ["IMAGE"],
  ImageScaleBy: ["IMAGE"],
  ImageScaleToTotalPixels: ["IMAGE"],
  ImageResize: ["IMAGE"],
  ImageInvert: ["IMAGE"],
  ImagePadForOutpaint: ["IMAGE", "MASK"],
  ImageGenerateGradient: ["IMAGE"],
  HintImageEnchance: ["IMAGE"],
  Canny: ["IMAGE"],
  ImageToMask: ["MASK"],
  MaskToImage: ["IMAGE"],
  InvertMask: ["MASK"],
  GetImageSize: ["INT", "INT", "INT"],
  "Image Size to Number": ["INT", "INT", "FLOAT", "FLOAT", "INT", "INT"],
  ImageExif: ["EXIF"],
  ImageExifMerge: ["EXIF"],
  ImageExifCreationDateAndBatchNumber: ["EXIF"],
  LegacyOutputURIs: ["STRING"],
  // Language models (ComfyUI's transformers nodes)
  OneShotInstructTokenize: ["TOKENS"],
  TransformersTranslationTokenize: ["TOKENS"],
  TransformersGenerate: ["STRING"],
  TransformersFlores200LanguageCodes: ["STRING"],
  TransformersM2M100LanguageCodes: ["STRING"],
  // Parameters
  IntRequestParameter: ["INT"],
  FloatRequestParameter: ["FLOAT"],
  BooleanRequestParameter: ["BOOLEAN"],
  StringRequestParameter: ["STRING"],
  StringEnumRequestParameter: ["STRING"],
  PrimitiveInt: ["INT"],
  PrimitiveFloat: ["FLOAT"],
  PrimitiveString: ["STRING"],
  PrimitiveBoolean: ["BOOLEAN"],
  // Outputs
  SaveImage: [],
  PreviewImage: [],
  SaveAnimatedWEBP: [],
  SaveAnimatedPNG: [],
  SaveAudio: [],
  SaveLatent: [],
  SaveString: [],
  PreviewString: [],
  SaveImagesResponse: [],
});

/**
 * Types that may cross from one GPU to another: small, serializable data. Everything else (including
 * any type not known here) keeps producer and consumer on one GPU, the safe choice.
 */
export const PORTABLE_TYPES: ReadonlySet<string> = new Set(["IMAGE", "MASK", "AUDIO", "STRING", "INT", "FLOAT", "BOOLEAN", "EXIF"]);

/**
 * Core ComfyUI classes whose outputs are fixed, so a link to an output they do not have is an error.
 * Custom nodes may reuse other names with other outputs, so only these are checked.
 */
export const CORE_CLASS_TYPES: ReadonlySet<string> = new Set([
  "CheckpointLoaderSimple", "UNETLoader", "CLIPLoader", "DualCLIPLoader", "TripleCLIPLoader", "QuadrupleCLIPLoader", "VAELoader", "LoraLoader",
  "LoraLoaderModelOnly", "ControlNetLoader", "UpscaleModelLoader", "CLIPVisionLoader", "StyleModelLoader", "CLIPTextEncode", "CLIPSetLastLayer",
  "ConditioningCombine", "ConditioningZeroOut", "ConditioningSetTimestepRange", "FluxGuidance", "ControlNetApplyAdvanced", "EmptyLatentImage",
  "EmptySD3LatentImage", "KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced", "BasicGuider", "CFGGuider", "BasicScheduler",
  "KSamplerSelect", "RandomNoise", "VAEDecode", "VAEDecodeTiled", "VAEEncode", "ImageUpscaleWithModel", "LoadImage", "ImageScale", "ImageScaleBy",
  "ImageInvert", "SaveImage", "PreviewImage", "ModelSamplingSD3", "ModelSamplingFlux", "ModelSamplingAuraFlow",
]);

/** The type of output `index` of a node class, or undefined when the class or index is unknown. */
export function outputType(classType: string, index: number): string | undefined {
  return OUTPUT_TYPES[classType]?.[index];
}

/** Whether a link of this type ties its two nodes to one GPU. Unknown types do (safe default). */
export function isGpuAffine(type: string | undefined): boolean {
  return type === undefined || !PORTABLE_TYPES.has(type);
}
