/**
 * The cost table: for each ComfyUI class type, whether it needs a GPU, the activation memory and
 * seconds it takes, and the model weights it loads, computed from its inputs and the graph around it.
 */
import { withoutPrototype } from "../lookup.ts";
import type { ComfyNode } from "../model.ts";
import { ComfyGraphContext, type Resolution } from "./context.ts";
import { identifyModel, loadSecondsFor, type IdentifiedModel, type ModelKind } from "./model-families.ts";

const GIB = 1024;

export interface LoadedModel {
  readonly name: string;
  readonly family: string;
  readonly kind: ModelKind;
  /** VRAM the weights take, in MiB. */
  readonly sizeMiB: number;
  /** Seconds to load the weights onto a GPU. */
  readonly loadS: number;
}

/** What the table says about a node before any observation refines it. */
export interface TableEstimate {
  readonly gpu: boolean;
  /** Activation memory while the node runs, in MiB, not counting the weights of loaded models. */
  readonly vramMiB: number;
  readonly durationS: number;
  /** Weights the node puts on the GPU (loader nodes). */
  readonly loads: readonly LoadedModel[];
  /** The main model the node runs, e.g. a sampler's diffusion model. */
  readonly model?: string;
  /** Amount of work (megapixels × frames × batch), for bucketing observations. */
  readonly workUnits: number;
  /** "default" when the class type is not in the table. */
  readonly source: "table" | "default";
}

type Rule = (node: ComfyNode, context: ComfyGraphContext) => Omit<TableEstimate, "source">;

interface LoaderSpec {
  readonly inputs: readonly string[];
  readonly kind: ModelKind;
  readonly dtypeInput?: string;
}

/** Loader classes: which inputs name the files they load, and what kind of model those are. */
// Looked up by class types that clients send: no prototype, so "__proto__" or "constructor" finds nothing.
export const LOADERS: Readonly<Record<string, LoaderSpec>> = withoutPrototype({
  CheckpointLoaderSimple: { inputs: ["ckpt_name"], kind: "diffusion" },
  CheckpointLoader: { inputs: ["ckpt_name"], kind: "diffusion" },
  CheckpointLoaderNF4: { inputs: ["ckpt_name"], kind: "diffusion" },
  unCLIPCheckpointLoader: { inputs: ["ckpt_name"], kind: "diffusion" },
  ImageOnlyCheckpointLoader: { inputs: ["ckpt_name"], kind: "diffusion" },
  UNETLoader: { inputs: ["unet_name"], kind: "diffusion", dtypeInput: "weight_dtype" },
  UnetLoaderGGUF: { inputs: ["unet_name"], kind: "diffusion" },
  CLIPLoader: { inputs: ["clip_name"], kind: "text-encoder" },
  CLIPLoaderGGUF: { inputs: ["clip_name"], kind: "text-encoder" },
  DualCLIPLoader: { inputs: ["clip_name1", "clip_name2"], kind: "text-encoder" },
  DualCLIPLoaderGGUF: { inputs: ["clip_name1", "clip_name2"], kind: "text-encoder" },
  TripleCLIPLoader: { inputs: ["clip_name1", "clip_name2", "clip_name3"], kind: "text-encoder" },
  QuadrupleCLIPLoader: { inputs: ["clip_name1", "clip_name2", "clip_name3", "clip_name4"], kind: "text-encoder" },
  VAELoader: { inputs: ["vae_name"], kind: "vae" },
  LoraLoader: { inputs: ["lora_name"], kind: "lora" },
  LoraLoaderModelOnly: { inputs: ["lora_name"], kind: "lora" },
  CreateHookLora: { inputs: ["lora_name"], kind: "lora" },
  // A whole checkpoint applied as a LoRA: its weights are loaded, but it is not the main model.
  CreateHookModelAsLora: { inputs: ["ckpt_name"], kind: "lora" },
  ControlNetLoader: { inputs: ["control_net_name"], kind: "controlnet" },
  ControlNetLoaderWeights: { inputs: ["control_net_name"], kind: "controlnet" },
  DiffControlNetLoader: { inputs: ["control_net_name"], kind: "controlnet" },
  UpscaleModelLoader: { inputs: ["model_name"], kind: "upscaler" },
  CLIPVisionLoader: { inputs: ["clip_name"], kind: "clip-vision" },
  StyleModelLoader: { inputs: ["style_model_name"], kind: "style-model" },
  TransformersLoader: { inputs: ["ckpt_name"], kind: "llm" },
});

/** Megapixels × frames × batch (audio: tens of seconds × batch). */
export function workUnits(r: Resolution): number {
  if (r.seconds !== undefined) return (r.seconds / 10) * r.batch;
  return ((r.width * r.height) / (1024 * 1024)) * r.frames * r.batch;
}

/** The file a loader input names: a literal, or the literal `value` of a parameter node linked to it. */
function fileNameOf(node: ComfyNode, input: string, context: ComfyGraphContext): string | undefined {
  const literal = node.inputs[input];
  if (typeof literal === "string" && literal.length > 0) return literal;
  const link = node.links.find((l) => l.input === input);
  const source = link && context.node(link.from);
  const value = source?.inputs.value ?? source?.inputs.default;
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** The models a loader node loads. */
export function modelsLoadedBy(node: ComfyNode, context: ComfyGraphContext): IdentifiedModel[] {
  const spec = LOADERS[node.classType];
  if (spec) {
    const dtype = spec.dtypeInput ? node.inputs[spec.dtypeInput] : undefined;
    return spec.inputs.flatMap((input) => {
      const name = fileNameOf(node, input, context);
      return name ? [identifyModel(name, spec.kind, typeof dtype === "string" ? dtype : undefined)] : [];
    });
  }
  // An unknown loader: any `*_name` input that reads like a file.
  if (/loader/i.test(node.classType)) {
    return Object.entries(node.inputs)
      .filter(([key, value]) => /_name\d*$/.test(key) && typeof value === "string" && /\.(safetensors|ckpt|pt|pth|bin|gguf)$/i.test(value))
      .map(([, value]) => identifyModel(value as string));
  }
  return [];
}

function loaded(model: IdentifiedModel): LoadedModel {
  return { name: model.name, family: model.family, kind: model.kind, sizeMiB: model.sizeMiB, loadS: loadSecondsFor(model.sizeMiB) };
}

/** The diffusion model a sampler (or anything taking a MODEL) runs, found up its MODEL/GUIDER links. */
export function diffusionModelOf(node: ComfyNode, context: ComfyGraphContext): IdentifiedModel | undefined {
  let found: IdentifiedModel | undefined;
  context.findUpstream(
    node,
    (t) => t === "MODEL" || t === "GUIDER",
    (n) => {
      found = LOADERS[n.classType]?.kind === "diffusion" ? modelsLoadedBy(n, context).find((m) => m.kind === "diffusion") : undefined;
      return found !== undefined;
    },
  );
  return found;
}

function modelsUpstream(node: ComfyNode, context: ComfyGraphContext, type: string, kind: ModelKind): IdentifiedModel[] {
  return context
    .collectUpstream(node, (t) => t === type)
    .flatMap((n) => modelsLoadedBy(n, context))
    .filter((m) => m.kind === kind);
}

const num = (value: unknown, fallback: number): number => (typeof value === "number" && Number.isFinite(value) ? value : fallback);

/** Model evaluations per sampling step: two with classifier-free guidance, one without. */
function evaluationsPerStep(node: ComfyNode, context: ComfyGraphContext): number {
  if ("cfg" in node.inputs) return num(node.inputs.cfg, 1) > 1 ? 2 : 1;
  const guider = context.findUpstream(node, (t) => t === "GUIDER", () => true);
  if (!guider) return 1;
  if (guider.classType === "DualCFGGuider") return 3;
  if (guider.classType === "CFGGuider") return num(guider.inputs.cfg, 1) > 1 ? 2 : 1;
  return 1;
}

const DEFAULT_STEPS = 20;

/** Nodes that run the diffusion loop: the heart of any segment they are in. */
export const SAMPLER_CLASS_TYPES: readonly string[] = ["KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"];

const sampler: Rule = (node, context) => {
  const model = diffusionModelOf(node, context);
  const units = workUnits(context.resolutionOf(node));
  let steps = context.stepsOf(node) ?? DEFAULT_STEPS;
  if (node.classType === "KSamplerAdvanced") {
    const end = Math.min(num(node.inputs.end_at_step, steps), steps);
    steps = Math.max(0, end - num(node.inputs.start_at_step, 0));
  } else if ("denoise" in node.inputs) {
    steps *= Math.min(1, Math.max(0, num(node.inputs.denoise, 1)));
  }
  const perStep = model?.stepSecondsPerUnit ?? 0.2;
  return {
    gpu: true,
    vramMiB: Math.ceil((0.5 + (model?.workingGiBPerUnit ?? 1.5) * units) * GIB),
    durationS: 0.2 + steps * evaluationsPerStep(node, context) * perStep * units,
    loads: [],
    ...(model && { model: model.name }),
    workUnits: units,
  };
};

const textEncode: Rule = (node, context) => {
  const encoders = modelsUpstream(node, context, "CLIP", "text-encoder");
  const encoderGiB = encoders.reduce((sum, m) => sum + m.sizeMiB / GIB, 0);
  const withImage = node.links.some((l) => l.input === "image");
  return {
    gpu: true,
    vramMiB: withImage ? 2 * GIB : GIB / 2,
    durationS: 0.05 + 0.01 * encoderGiB + (withImage ? 0.5 : 0),
    loads: [],
    ...(encoders[0] && { model: encoders.map((m) => m.name).join("+") }),
    workUnits: 1,
  };
};

function vaeRule(secondsPerUnit: number, gibPerUnit: number, tiled = false): Rule {
  return (node, context) => {
    const r = context.resolutionOf(node);
    const units = workUnits(r);
    const isVideo = r.frames > 1;
    // Video VAEs decode in temporal chunks: far less memory and time per frame than per image.
    const perUnitSeconds = isVideo ? secondsPerUnit / 4 : secondsPerUnit;
    const perUnitGiB = isVideo ? gibPerUnit / 15 : gibPerUnit;
    const working = Math.min(40, 0.5 + perUnitGiB * units) * (tiled ? 0.35 : 1);
    const vae = modelsUpstream(node, context, "VAE", "vae")[0];
    return {
      gpu: true,
      vramMiB: Math.ceil(Math.max(0.5, working) * GIB),
      durationS: 0.05 + perUnitSeconds * units * (tiled ? 1.3 : 1),
      loads: [],
      ...(vae && { model: vae.name }),
      workUnits: units,
    };
  };
}

const upscaleWithModel: Rule = (node, context) => {
  const units = workUnits(context.resolutionOf(node));
  const upscaler = modelsUpstream(node, context, "UPSCALE_MODEL", "upscaler")[0];
  // ComfyUI upscales in 512-pixel tiles, so memory stays flat while time grows with the image.
  return { gpu: true, vramMiB: 1.5 * GIB, durationS: 0.3 + 1.5 * units, loads: [], ...(upscaler && { model: upscaler.name }), workUnits: units };
};

const generateText: Rule = (node, context) => {
  const llm = modelsUpstream(node, context, "MODEL", "llm")[0];
  const tokens = num(node.inputs.max_new_tokens, 512);
  return { gpu: true, vramMiB: 2 * GIB, durationS: 0.5 + 0.02 * tokens, loads: [], ...(llm && { model: llm.name }), workUnits: tokens / 512 };
};

const loader: Rule = (node, context) => {
  const models = modelsLoadedBy(node, context).map(loaded);
  const main = models.find((m) => m.kind === "diffusion" || m.kind === "llm") ?? models[0];
  return { gpu: true, vramMiB: 0, durationS: 0, loads: models, ...(main && { model: main.name }), workUnits: 0 };
};

/** A fixed cost. */
const fixed =
  (gpu: boolean, durationS: number, vramGiB = 0): Rule =>
  () => ({ gpu, vramMiB: Math.ceil(vramGiB * GIB), durationS, loads: [], workUnits: 0 });

/** Encodes pixels through the VAE as part of building a latent or conditioning. */
const encodesPixels: Rule = vaeRule(0.1, 1.0);

const cpuLight = fixed(false, 0.01);
const cpuImage = fixed(false, 0.05);
const save: Rule = (node, context) => {
  const r = context.resolutionOf(node);
  return { gpu: false, vramMiB: 0, durationS: 0.1 + 0.05 * r.frames * r.batch, loads: [], workUnits: 0 };
};

function table(): Record<string, Rule> {
  // Looked up by class types that clients send: no prototype, so "__proto__" or "constructor" finds nothing.
  const rules: Record<string, Rule> = Object.create(null) as Record<string, Rule>;
  const set = (rule: Rule, ...classTypes: string[]) => classTypes.forEach((c) => (rules[c] = rule));
  set(loader, ...Object.keys(LOADERS));
  set(sampler, ...SAMPLER_CLASS_TYPES);
  set(textEncode, "CLIPTextEncode", "CLIPTextEncodeSD3", "CLIPTextEncodeSDXL", "CLIPTextEncodeFlux", "TextEncodeQwenImageEdit");
  set(vaeRule(0.15, 1.5), "VAEDecode");
  set(vaeRule(0.15, 1.5, true), "VAEDecodeTiled");
  set(vaeRule(0.1, 1.0), "VAEEncode", "VAEEncodeForInpaint");
  set(fixed(true, 0.5, 1), "VAEDecodeAudio");
  set(upscaleWithModel, "ImageUpscaleWithModel");
  set(generateText, "TransformersGenerate");
  set(encodesPixels, "InpaintModelConditioning", "InstructPixToPixConditioning", "LTXVImgToVideo", "CosmosImageToVideoLatent", "CosmosPredict2ImageToVideoLatent", "HunyuanRefinerLatent");
  set(fixed(true, 0.1, 0.5), "CLIPVisionEncode", "Canny");
  set(fixed(true, 0.05, 0.2), "StyleModelApply", "ReferenceLatent");
  // torch.compile runs once, on the GPU, the first time the model samples.
  set(fixed(true, 20, 1), "TorchCompileModel");
  set(fixed(false, 0.2), "OneShotInstructTokenize", "TransformersTranslationTokenize");
  set(fixed(false, 0.5), "LoadImageFromURL");
  set(
    cpuLight,
    // latents made on the CPU, conditioning bookkeeping, guiders, schedulers, sampler and noise objects, patches, hooks, parameters
    "EmptyLatentImage", "EmptySD3LatentImage", "EmptyFlux2LatentImage", "EmptyHunyuanImageLatent", "EmptyHunyuanLatentVideo", "EmptyLTXVLatentVideo",
    "EmptyMochiLatentVideo", "EmptyCosmosLatentVideo", "EmptyLatentAudio", "LatentUpscale", "LatentUpscaleBy", "LatentComposite", "SetLatentNoiseMask", "RepeatLatentBatch",
    "ConditioningCombine", "ConditioningConcat", "ConditioningAverage", "ConditioningSetArea", "ConditioningSetMask", "ConditioningSetTimestepRange", "ConditioningZeroOut",
    "FluxGuidance", "PairConditioningSetProperties", "PairConditioningSetPropertiesAndCombine", "ControlNetApply", "ControlNetApplyAdvanced", "ControlNetApplySD3",
    "SetUnionControlNetType", "LTXVConditioning", "BasicGuider", "CFGGuider", "DualCFGGuider", "BasicScheduler", "KarrasScheduler", "AlignYourStepsScheduler",
    "Flux2Scheduler", "LTXVScheduler", "SDTurboScheduler", "KSamplerSelect", "SamplerEulerAncestral", "SamplerEulerCFGpp", "RandomNoise", "DisableNoise",
    "ModelSamplingAuraFlow", "ModelSamplingFlux", "ModelSamplingSD3", "ModelSamplingDiscrete", "ModelSamplingContinuousEDM", "CFGNorm", "DifferentialDiffusion",
    "GroupOffload", "FreeU", "FreeU_V2", "CLIPSetLastLayer", "SetClipHooks", "T5TokenizerOptions", "CombineHooks2", "SetHookKeyframes", "CreateHookKeyframesInterpolated",
    "IntRequestParameter", "FloatRequestParameter", "BooleanRequestParameter", "StringRequestParameter", "StringEnumRequestParameter", "ImageRequestParameter",
    "PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveBoolean", "TransformersFlores200LanguageCodes", "TransformersM2M100LanguageCodes", "LegacyOutputURIs",
    "ImageExif", "ImageExifMerge", "ImageExifCreationDateAndBatchNumber", "LoadImage", "LoadImageMask",
  );
  set(
    cpuImage,
    "ImageScale", "ImageScaleBy", "ImageScaleToTotalPixels", "ImageResize", "ImageInvert", "ImagePadForOutpaint", "ImageGenerateGradient", "HintImageEnchance",
    "ImageToMask", "MaskToImage", "InvertMask", "GetImageSize", "Image Size to Number",
  );
  set(save, "SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveAudio", "SaveLatent", "SaveString", "PreviewString", "SaveImagesResponse");
  return rules;
}

export const COST_RULES: Readonly<Record<string, Rule>> = table();

/** Cost of a class type nothing is known about: assume it needs a GPU and a modest amount of it. */
export const UNKNOWN_NODE_COST = { gpu: true, vramMiB: 2 * GIB, durationS: 2 } as const;

/** The table's estimate for a node (no observations). */
export function tableEstimate(node: ComfyNode, context: ComfyGraphContext): TableEstimate {
  const rule = COST_RULES[node.classType];
  if (rule) return { ...rule(node, context), source: "table" };
  const loads = modelsLoadedBy(node, context).map(loaded);
  return { ...UNKNOWN_NODE_COST, loads, ...(loads[0] && { model: loads[0].name }), workUnits: workUnits(context.resolutionOf(node)), source: "default" };
}
