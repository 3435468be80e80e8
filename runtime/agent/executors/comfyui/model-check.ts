/**
 * Checks made before a prompt is sent: every node's class must be installed on the server, and every
 * input that `/object_info` describes as a list of choices (a checkpoint, VAE, LoRA, sampler…) must
 * hold one of them. A prompt that would fail half-way for a missing model is never dispatched.
 */

interface PromptNode {
  readonly class_type: string;
  readonly inputs: Readonly<Record<string, unknown>>;
}

const isLink = (v: unknown): boolean => Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "number";

/**
 * Inputs whose choices list files a client uploads (LoadImage's `image`): the executor uploads those
 * itself just before the prompt, after `/object_info` was read, so they are not checked here.
 */
const UPLOAD_FLAGS = ["image_upload", "video_upload", "audio_upload", "upload"];

/**
 * The choices of a combo input: `[[choice, …], {…}]`, or as newer servers describe their schema-defined
 * nodes, `["COMBO", {options: [choice, …]}]`. Undefined for any other input.
 */
function choicesOf(spec: unknown): unknown[] | undefined {
  if (!Array.isArray(spec)) return undefined;
  if (Array.isArray(spec[0])) return spec[0] as unknown[];
  const options = (spec[1] ?? {}) as { options?: unknown };
  return spec[0] === "COMBO" && Array.isArray(options.options) ? options.options : undefined;
}

/** One line per problem, each naming the node, its class and what is missing; empty when the prompt can run. */
export function missingOnServer(prompt: Readonly<Record<string, PromptNode>>, objectInfo: Readonly<Record<string, unknown>>, server: string): string[] {
  const problems: string[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    const info = objectInfo[node.class_type] as { input?: Record<string, Record<string, unknown> | undefined> } | undefined;
    if (info === undefined || info === null || typeof info !== "object") {
      problems.push(`node ${id}: class '${node.class_type}' is not installed on ${server} (a custom node missing there?)`);
      continue;
    }
    const specs: Record<string, unknown> = { ...info.input?.optional, ...info.input?.required };
    for (const [name, spec] of Object.entries(specs)) {
      const choices = choicesOf(spec);
      if (choices === undefined) continue;
      const options = (spec as unknown[])[1] as Record<string, unknown> | undefined;
      if (options && UPLOAD_FLAGS.some((f) => options[f] === true)) continue;
      const value = node.inputs[name];
      // A link is checked where it comes from; a list is a multi-select combo's value.
      if (value === undefined || isLink(value) || Array.isArray(value)) continue;
      if (choices.includes(value)) continue;
      const shown = choices.length === 0 ? "it has none" : `it has: ${choices.slice(0, 10).map(String).join(", ")}${choices.length > 10 ? `, … (${choices.length} in all)` : ""}`;
      problems.push(`node ${id} (${node.class_type}): ${name} '${String(value)}' is not on ${server} (${shown})`);
    }
  }
  return problems;
}
