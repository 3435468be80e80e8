/**
 * ComfyUI API-format prompts: `{ "<node id>": { class_type, inputs, _meta?: { title } } }`, where an input
 * whose value is `[nodeId, outputIndex]` links to another node's output. Also accepted: the body of
 * ComfyUI's `POST /prompt` (`{ "prompt": { … }, "client_id"?: … }`).
 */
import { ValidationError, type FieldIssue } from "../config/errors.ts";
import { CostModel, type NodeEstimate } from "./cost/cost-model.ts";
import { CORE_CLASS_TYPES, OUTPUT_TYPES } from "./cost/output-types.ts";
import { findGraphIssues } from "./graph-check.ts";
import { GRAPH_LIMITS, type ComfyLink, type ComfyNode, type Stage, type WorkflowGraph } from "./model.ts";

/** Node ids as ComfyUI writes them: "3", or "57:8" for nodes flattened out of a subgraph. */
const NODE_ID = /^[A-Za-z0-9_.:-]+$/;

/** Fields a node may carry besides class_type and inputs; others are refused as typos. */
const NODE_FIELDS = new Set(["class_type", "inputs", "_meta", "is_changed"]);

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What ComfyUI itself treats as a link: a two-element array of a node id and an output index. */
export function isComfyLink(value: unknown): value is [string, number] {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && Number.isInteger(value[1]);
}

/** The prompt object inside a document: the document itself or the `prompt` of a /prompt request body. */
export function unwrapComfyPrompt(doc: unknown): unknown {
  if (isObject(doc) && isObject(doc.prompt) && !("class_type" in doc.prompt)) return doc.prompt;
  return doc;
}

/** True when the document looks like an API-format prompt (every entry a node with a class_type). */
export function looksLikeComfyPrompt(doc: unknown): boolean {
  const prompt = unwrapComfyPrompt(doc);
  if (!isObject(prompt)) return false;
  const values = Object.values(prompt);
  return values.length > 0 && values.some((v) => isObject(v) && "class_type" in v);
}

/** True for ComfyUI's UI workflow format (the editor's save file), which is not runnable as is. */
export function looksLikeComfyUiWorkflow(doc: unknown): boolean {
  return isObject(doc) && Array.isArray(doc.nodes) && Array.isArray(doc.links);
}

/** Imports a ComfyUI prompt; throws a ValidationError naming every bad node and input. */
export function parseComfyPrompt(doc: unknown, source: string, name: string): WorkflowGraph {
  const prompt = unwrapComfyPrompt(doc);
  if (!isObject(prompt)) {
    throw new ValidationError(source, [{ field: "(root)", message: "must be an object mapping node ids to { class_type, inputs }" }]);
  }
  const entries = Object.entries(prompt);
  if (entries.length === 0) throw new ValidationError(source, [{ field: "(root)", message: "has no nodes: export a prompt with File → Export (API)" }]);
  if (entries.length > GRAPH_LIMITS.maxStages) {
    throw new ValidationError(source, [{ field: "(root)", message: `has ${entries.length} nodes, more than the limit of ${GRAPH_LIMITS.maxStages}: split the workflow` }]);
  }

  const issues: FieldIssue[] = [];
  const nodes: ComfyNode[] = [];
  for (const [id, raw] of entries) {
    const at = quoteId(id);
    if (id.length > GRAPH_LIMITS.maxIdLength || !NODE_ID.test(id) || id === "__proto__") {
      issues.push({ field: at, message: `node id must be 1 to ${GRAPH_LIMITS.maxIdLength} letters, digits, '_', '.', ':' or '-' (like "3" or "57:8")` });
      continue;
    }
    if (!isObject(raw)) {
      issues.push({ field: at, message: "must be an object { class_type, inputs }" });
      continue;
    }
    for (const key of Object.keys(raw)) {
      if (!NODE_FIELDS.has(key)) issues.push({ field: `${at}.${key}`, message: `unknown field (a node has ${[...NODE_FIELDS].join(", ")})` });
    }
    if (typeof raw.class_type !== "string" || raw.class_type.length === 0) {
      issues.push({ field: `${at}.class_type`, message: "is required: the name of the node's class, e.g. 'KSampler'" });
      continue;
    }
    const rawInputs = raw.inputs ?? {};
    if (!isObject(rawInputs)) {
      issues.push({ field: `${at}.inputs`, message: "must be an object mapping input names to values or [nodeId, outputIndex] links" });
      continue;
    }
    const inputs: Record<string, unknown> = {};
    const links: ComfyLink[] = [];
    for (const [input, value] of Object.entries(rawInputs)) {
      if (input === "__proto__") {
        issues.push({ field: `${at}.inputs.${input}`, message: "'__proto__' is not allowed as an input name: rename it" });
      } else if (isComfyLink(value)) {
        if (value[1] < 0) issues.push({ field: `${at}.inputs.${input}`, message: `links to output ${value[1]} of node '${value[0]}': output indexes start at 0` });
        links.push({ input, from: value[0], output: value[1] });
      } else {
        inputs[input] = value;
      }
    }
    if (links.length > GRAPH_LIMITS.maxNeedsPerStage) {
      issues.push({ field: `${at}.inputs`, message: `has ${links.length} links, more than the limit of ${GRAPH_LIMITS.maxNeedsPerStage}` });
    }
    const meta = raw._meta;
    const title = isObject(meta) && typeof meta.title === "string" ? meta.title : undefined;
    nodes.push({ id, classType: raw.class_type, ...(title !== undefined && { title }), inputs, links });
  }
  if (issues.length > 0) throw new ValidationError(source, issues);
  const outputIssues = findMissingOutputs(nodes);
  if (outputIssues.length > 0) throw new ValidationError(source, outputIssues);

  const graphIssues = findGraphIssues(
    nodes.map((node) => ({
      id: node.id,
      field: quoteId(node.id),
      dependencies: node.links.map((l) => ({ id: l.from, field: `${quoteId(node.id)}.inputs.${l.input}` })),
    })),
    { noun: "node", danglingFix: "add that node or point the input at an existing node's output", cycleFix: "ComfyUI prompts must be acyclic: remove one of these links" },
  );
  if (graphIssues.length > 0) throw new ValidationError(source, graphIssues);

  const estimates = new CostModel().estimateNodes(nodes);
  return { name, format: "comfyui", stages: nodes.map((n) => nodeStage(n, estimates.get(n.id)!)), comfyNodes: nodes };
}

/** One stage per node, before segmentation, with the cost table's figures for the node alone. */
function nodeStage(node: ComfyNode, estimate: NodeEstimate): Stage {
  const residentMiB = estimate.loads.reduce((sum, m) => sum + m.sizeMiB, 0);
  const model = estimate.loads[0]?.name ?? estimate.model;
  return {
    id: node.id,
    needs: [...new Set(node.links.map((l) => l.from))],
    resources: { gpus: estimate.gpu ? 1 : 0, vramMiB: estimate.gpu ? residentMiB + estimate.vramMiB : 0, ...(model !== undefined && { model }) },
    estimate: { durationS: estimate.durationS, modelLoadS: estimate.loads.reduce((sum, m) => sum + m.loadS, 0) },
    comfyNodes: [node.id],
  };
}

/** Links to an output index that a core node class does not have (ComfyUI would refuse the prompt). */
function findMissingOutputs(nodes: readonly ComfyNode[]): FieldIssue[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const issues: FieldIssue[] = [];
  for (const node of nodes) {
    for (const link of node.links) {
      const source = byId.get(link.from);
      if (!source || !CORE_CLASS_TYPES.has(source.classType)) continue;
      const outputs = OUTPUT_TYPES[source.classType] ?? [];
      if (link.output < outputs.length) continue;
      const listed = outputs.length === 0 ? "which has no outputs" : `whose outputs are ${outputs.map((t, i) => `${i} ${t}`).join(", ")}`;
      issues.push({ field: `${quoteId(node.id)}.inputs.${link.input}`, message: `links to output ${link.output} of node '${source.id}' (${source.classType}), ${listed}: link one of those` });
    }
  }
  return issues;
}

/** Node ids are keys like "3" or "57:8"; quote them so a path reads `"57:8".inputs.model`. */
function quoteId(id: string): string {
  return JSON.stringify(id);
}
