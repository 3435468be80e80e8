/**
 * The workflow model's public API: format detection, import of native and ComfyUI documents,
 * validation, Kubernetes quantities, and the schedulable stages of a graph.
 */
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { ValidationError } from "../config/errors.ts";
import { DNS_LABEL } from "../config/schema.ts";
import { looksLikeComfyPrompt, looksLikeComfyUiWorkflow, parseComfyPrompt } from "./comfyui.ts";
import type { WorkflowFormat, WorkflowGraph } from "./model.ts";
import { NATIVE_API_VERSION, parseNativeWorkflow } from "./native.ts";
import { parseDocumentText } from "./text.ts";
import { DEFAULT_MAX_JSON_DEPTH, findTooDeep, formatJsonPath, tooDeepMessage } from "./json-depth.ts";

export * from "./model.ts";
export { parseQuantityMiB, tryParseQuantityMiB } from "./quantity.ts";
export { NATIVE_API_VERSION, STAGE_ID, DEFAULT_STAGE_VRAM_MIB, NativeWorkflowSchema, type NativeWorkflowDocument } from "./native.ts";
export { isComfyLink } from "./comfyui.ts";
export { DEFAULT_RETRY, RETRY_LIMITS, retryDelaySeconds, retryPolicyOf } from "./retry.ts";
export { DEFAULT_MAX_JSON_DEPTH, findTooDeep, formatJsonPath, scanJsonTextDepth, tooDeepMessage, type TooDeep } from "./json-depth.ts";

export interface ParseOptions {
  /** Name of the workflow; a native workflow otherwise uses metadata.name, a ComfyUI prompt "comfyui". */
  readonly name?: string;
  /** Skip detection and parse as this format. */
  readonly format?: WorkflowFormat;
  /** What the document is called in error messages (a file name). */
  readonly source?: string;
  /** Arrays and objects nested deeper than this are refused before the document is walked (default 64). */
  readonly maxDepth?: number;
}

/** Tells a native workflow from a ComfyUI API-format prompt; throws a ValidationError when it is neither. */
export function detectFormat(doc: unknown, source = "workflow"): WorkflowFormat {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    const what = doc === null ? "null" : Array.isArray(doc) ? "a list" : typeof doc;
    throw new ValidationError(source, [{ field: "(root)", message: `is ${what}, not a workflow: expected an object (a gpufabric Workflow or a ComfyUI API-format prompt)` }]);
  }
  if ("apiVersion" in doc || "kind" in doc || "spec" in doc) return "native";
  if (looksLikeComfyPrompt(doc)) return "comfyui";
  if (looksLikeComfyUiWorkflow(doc)) {
    throw new ValidationError(source, [
      { field: "(root)", message: "is a ComfyUI editor workflow (nodes and links), not an API-format prompt: in ComfyUI use Workflow → Export (API) and pass that file" },
    ]);
  }
  throw new ValidationError(source, [
    {
      field: "(root)",
      message: `is neither a gpufabric Workflow (apiVersion: ${NATIVE_API_VERSION}, kind: Workflow) nor a ComfyUI API-format prompt (node ids mapped to { class_type, inputs })`,
    },
  ]);
}

/** Validates a workflow document (already parsed from JSON or YAML) and returns its graph. */
export function parseWorkflow(doc: unknown, options: ParseOptions = {}): WorkflowGraph {
  const source = options.source ?? "workflow";
  // Checked without recursion before the importers, which recurse (a 50,000-deep node input would overflow them).
  const tooDeep = findTooDeep(doc, options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH);
  if (tooDeep !== undefined) throw new ValidationError(source, [{ field: formatJsonPath(tooDeep.path), message: tooDeepMessage(tooDeep) }]);
  const format = options.format ?? detectFormat(doc, source);
  if (format === "native") return parseNativeWorkflow(doc, source, options.name);
  return parseComfyPrompt(doc, source, options.name ?? "comfyui");
}

/**
 * Parses and validates the text of a workflow file. `fileNameForMessages` names the document in
 * errors, picks JSON or YAML, and names a ComfyUI prompt after the file.
 */
export function parseWorkflowText(text: string, fileNameForMessages: string, options: Omit<ParseOptions, "source"> = {}): WorkflowGraph {
  const doc = parseDocumentText(text, fileNameForMessages);
  const format = options.format ?? detectFormat(doc, fileNameForMessages);
  const name = options.name ?? (format === "comfyui" ? nameFromFile(fileNameForMessages) : undefined);
  return parseWorkflow(doc, { ...options, format, source: fileNameForMessages, ...(name !== undefined && { name }) });
}

/** Reads, parses and validates a workflow file (native YAML/JSON or a ComfyUI API-format JSON prompt). */
export function loadWorkflowFile(path: string, options: Omit<ParseOptions, "source"> = {}): WorkflowGraph {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ValidationError(`workflow file '${path}'`, [
      { field: "(file)", message: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): check the path` },
    ]);
  }
  return parseWorkflowText(text, path, options);
}

/** A DNS-1123 label made from a file name ("SDXL Turbo.json" → "sdxl-turbo"), or "comfyui". */
export function nameFromFile(file: string): string {
  const label = basename(file, extname(file))
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  return DNS_LABEL.test(label) ? label : "comfyui";
}

export { stagesFor, DEFAULT_NATIVE_ESTIMATE, WHOLE_GRAPH_STAGE_ID, type StagesOptions } from "./stages.ts";
export {
  buildSegmentPrompt,
  handoffFilesOf,
  handoffPrefix,
  type HandoffFiles,
  type HandoffKind,
  type SegmentInput,
  type SegmentOutput,
  type SegmentPrompt,
  type SegmentPromptNode,
} from "./comfyui-segment-prompt.ts";
export { CostModel, DEFAULT_EWMA_ALPHA, observationKey, workBucket, type CostModelOptions, type CostModelSnapshot, type NodeEstimate, type Observation } from "./cost/cost-model.ts";
export { ComfyGraphContext } from "./cost/context.ts";
export { segmentComfyGraph, compareNodeIds, FOLD_MAX_SECONDS, type SegmentedGraph } from "./cost/segment.ts";
export { OUTPUT_TYPES, PORTABLE_TYPES, isGpuAffine, outputType } from "./cost/output-types.ts";
export { identifyModel, type IdentifiedModel, type ModelKind } from "./cost/model-families.ts";
export { observeStage, type StageObservation } from "./cost/observe-stage.ts";
