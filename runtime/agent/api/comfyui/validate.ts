/**
 * `POST /prompt` checked the way ComfyUI's `validate_prompt` checks it: every node has a known class,
 * at least one output node, and each output's ancestors have valid inputs. Outputs with errors are left
 * out (their errors come back in `node_errors` with a 200) unless none is left (400). What remains is
 * pruned to the outputs and their ancestors, as ComfyUI executes only those.
 */
import { ComfyError, errorItem, invalidPrompt, outputsFailed, type ComfyErrorItem, type ComfyNodeErrors } from "./errors.ts";

type JsonObject = Record<string, unknown>;
export type ApiPrompt = Record<string, { class_type: string; inputs: JsonObject; _meta?: unknown; is_changed?: unknown }>;

/**
 * Output nodes of ComfyUI's core (`OUTPUT_NODE = True`), for when no ComfyUI server is there to say
 * which classes are outputs (simulated stages).
 */
const CORE_OUTPUT_NODES = new Set([
  "SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "SaveAudio", "SaveAudioMP3", "SaveAudioOpus", "PreviewAudio",
  "SaveLatent", "SaveString", "PreviewString", "PreviewAny", "SaveImagesResponse", "SaveVideo", "SaveWEBM", "SaveGLB", "SaveImageWebsocket",
]);

/** Image inputs whose choices are the files uploaded to the input folder (LoadImage's `image_upload`). */
const UPLOAD_INPUTS: Readonly<Record<string, string>> = { LoadImage: "image", LoadImageMask: "image", LoadImageOutput: "image" };

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_CLIENT_ID = 256;

export interface CheckedPrompt {
  readonly prompt: ApiPrompt;
  /** Output nodes that will run. */
  readonly outputs: string[];
  /** Errors of the outputs left out (a 200 still carries them, as in ComfyUI). */
  readonly nodeErrors: ComfyNodeErrors;
  readonly promptId: string | undefined;
  readonly clientId: string | undefined;
  readonly number: number | undefined;
  readonly front: boolean;
  readonly extraData: JsonObject;
  /** Uploaded files the prompt's loaders name (as the node's input holds them). */
  readonly uploads: string[];
}

export interface PromptCheckContext {
  /** The servers' `/object_info`, or null when no ComfyUI server is there to ask. */
  readonly objectInfo: Readonly<Record<string, unknown>> | null;
  /** Whether the tenant uploaded a file of this name (`name.png`, `sub/name.png`, `name.png [input]`). */
  readonly hasUpload: (value: string) => boolean;
}

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2 && (typeof v[0] === "string" || typeof v[0] === "number") && Number.isInteger(v[1]);

export function checkPromptRequest(body: unknown, ctx: PromptCheckContext): CheckedPrompt {
  if (!isObject(body) || !isObject(body.prompt)) throw new ComfyError(400, errorItem("no_prompt", "No prompt provided", "No prompt provided"));
  const promptId = body.prompt_id;
  if (promptId !== undefined && promptId !== null && (typeof promptId !== "string" || !CANONICAL_UUID.test(promptId))) {
    throw new ComfyError(
      400,
      errorItem("invalid_prompt_id", "Invalid prompt_id format", `prompt_id must be a canonical lowercase UUID such as 3f2b8c1e-5d6a-4c7b-9e0f-1a2b3c4d5e6f (got ${JSON.stringify(promptId).slice(0, 80)}); or leave it out`),
    );
  }
  const clientId = body.client_id;
  if (clientId !== undefined && clientId !== null && (typeof clientId !== "string" || clientId.length > MAX_CLIENT_ID)) {
    throw invalidPrompt("client_id must be a string of at most 256 characters", "client_id");
  }
  if (body.number !== undefined && body.number !== null && (typeof body.number !== "number" || !Number.isFinite(body.number))) {
    throw invalidPrompt("number must be a number (the prompt's place in the queue: lower runs first)", "number");
  }
  if (body.extra_data !== undefined && !isObject(body.extra_data)) throw invalidPrompt("extra_data must be an object", "extra_data");
  const targets = body.partial_execution_targets;
  if (targets !== undefined && targets !== null && (!Array.isArray(targets) || !targets.every((t) => typeof t === "string"))) {
    throw invalidPrompt("partial_execution_targets must be a list of output node ids", "partial_execution_targets");
  }

  const prompt = body.prompt;
  const info = ctx.objectInfo;
  const outputs: string[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    if (!isObject(node) || typeof node.class_type !== "string") {
      throw invalidPrompt("Cannot execute because a node is missing the class_type property.", `Node ID '#${id}'`);
    }
    const cls = info?.[node.class_type];
    if (info !== null && !isObject(cls)) throw invalidPrompt(`Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`);
    const isOutput = isObject(cls) ? cls.output_node === true : CORE_OUTPUT_NODES.has(node.class_type);
    if (isOutput && (targets === undefined || targets === null || (targets as string[]).includes(id))) outputs.push(id);
  }
  if (outputs.length === 0) throw new ComfyError(400, errorItem("prompt_no_outputs", "Prompt has no outputs"));

  const graph = prompt as ApiPrompt;
  const nodeErrors: ComfyNodeErrors = {};
  const errorsOf = new Map<string, ComfyErrorItem[]>();
  const valid: string[] = [];
  const keep = new Set<string>();
  for (const out of outputs) {
    const ancestry = ancestorsOf(graph, out);
    let failed = false;
    for (const id of ancestry) {
      let errors = errorsOf.get(id);
      if (errors === undefined) errorsOf.set(id, (errors = inputErrors(graph, id, info, ctx)));
      if (errors.length === 0) continue;
      failed = true;
      const entry = (nodeErrors[id] ??= { errors, dependent_outputs: [], class_type: graph[id]!.class_type });
      entry.dependent_outputs.push(out);
    }
    if (failed) continue;
    valid.push(out);
    for (const id of ancestry) keep.add(id);
  }
  if (valid.length === 0) throw outputsFailed(nodeErrors);

  const pruned: ApiPrompt = {};
  const uploads: string[] = [];
  for (const [id, node] of Object.entries(graph)) {
    if (!keep.has(id)) continue;
    pruned[id] = node;
    const uploadInput = UPLOAD_INPUTS[node.class_type];
    const value = uploadInput === undefined ? undefined : node.inputs?.[uploadInput];
    if (typeof value === "string" && !uploads.includes(value)) uploads.push(value);
  }
  return {
    prompt: pruned,
    outputs: valid,
    nodeErrors,
    promptId: typeof promptId === "string" ? promptId : undefined,
    clientId: typeof clientId === "string" ? clientId : undefined,
    number: typeof body.number === "number" ? body.number : undefined,
    front: body.front === true,
    extraData: isObject(body.extra_data) ? body.extra_data : {},
    uploads,
  };
}

/** A node and every node it links to, dependencies first, without recursion (graphs may be deep). */
export function ancestorsOf(graph: ApiPrompt, out: string): string[] {
  const order: string[] = [];
  const seen = new Set<string>([out]);
  const stack: Array<{ id: string; links: string[] }> = [{ id: out, links: linksOf(graph, out) }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const next = top.links.pop();
    if (next === undefined) {
      order.push(top.id);
      stack.pop();
    } else if (!seen.has(next) && graph[next] !== undefined) {
      seen.add(next);
      stack.push({ id: next, links: linksOf(graph, next) });
    }
  }
  return order;
}

function linksOf(graph: ApiPrompt, id: string): string[] {
  const inputs = graph[id]?.inputs;
  if (!isObject(inputs)) return [];
  return Object.values(inputs)
    .filter(isLink)
    .map((v) => String(v[0]))
    .reverse();
}

/** ComfyUI's per-input checks that matter before anything runs: links, required inputs, choices, uploaded images. */
function inputErrors(graph: ApiPrompt, id: string, info: Readonly<Record<string, unknown>> | null, ctx: PromptCheckContext): ComfyErrorItem[] {
  const node = graph[id]!;
  const inputs = isObject(node.inputs) ? node.inputs : {};
  const errors: ComfyErrorItem[] = [];
  if (node.inputs !== undefined && !isObject(node.inputs)) errors.push(errorItem("invalid_input_type", "Inputs must be an object", "inputs", { input_name: "inputs" }));
  for (const [name, value] of Object.entries(inputs)) {
    if (isLink(value) && graph[String(value[0])] === undefined) {
      errors.push(errorItem("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", name, { input_name: name, received_value: value }));
    }
  }
  const uploadInput = UPLOAD_INPUTS[node.class_type];
  if (uploadInput !== undefined) {
    const value = inputs[uploadInput];
    if (typeof value === "string" && !ctx.hasUpload(value)) {
      errors.push(
        errorItem("custom_validation_failed", "Custom validation failed for node", `${uploadInput} - Invalid image file: ${value}`, {
          input_name: uploadInput,
          received_value: value,
        }),
      );
    }
  }
  const cls = info?.[node.class_type];
  if (!isObject(cls) || !isObject(cls.input)) return errors;
  const required = isObject(cls.input.required) ? cls.input.required : {};
  for (const [name, spec] of Object.entries(required)) {
    const value = inputs[name];
    if (value === undefined) {
      errors.push(errorItem("required_input_missing", "Required input is missing", name, { input_name: name }));
      continue;
    }
    if (name === uploadInput || isLink(value) || !Array.isArray(spec) || !Array.isArray(spec[0])) continue;
    const choices = spec[0] as unknown[];
    if (!choices.includes(value)) {
      const shown = choices.length > 20 ? `list of length ${choices.length}` : JSON.stringify(choices);
      errors.push(
        errorItem("value_not_in_list", "Value not in list", `${name}: '${String(value)}' not in ${shown}`, {
          input_name: name,
          input_config: spec,
          received_value: value,
        }),
      );
    }
  }
  return errors;
}

/** The file names a request's loaders name (to learn which of them the tenant uploaded before checking). */
export function uploadValues(body: unknown): string[] {
  if (!isObject(body) || !isObject(body.prompt)) return [];
  const values = new Set<string>();
  for (const node of Object.values(body.prompt)) {
    if (!isObject(node) || typeof node.class_type !== "string" || !isObject(node.inputs)) continue;
    const input = UPLOAD_INPUTS[node.class_type];
    const value = input === undefined ? undefined : node.inputs[input];
    if (typeof value === "string" && values.size < 256) values.add(value);
  }
  return [...values];
}
