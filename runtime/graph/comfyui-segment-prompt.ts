/**
 * One stage of a segmented ComfyUI prompt as a runnable API prompt of its own, for a ComfyUI server
 * pinned to that stage's GPU. Data crosses between GPUs through core nodes only, so any stock ComfyUI
 * server runs the result:
 * - an IMAGE leaves its segment through a `SaveImage` and enters the next through `LoadImage` (one per
 *   image of the batch, joined again with `ImageBatch`);
 * - a MASK goes the same way, turned into an image first (`MaskToImage`) and back after (`ImageToMask`);
 * - anything else that crosses (strings, numbers, audio) has no core file round trip, so the node that
 *   makes it is copied into the prompt together with what it needs.
 * Given every node id, the prompt comes back unchanged (whole-graph mode).
 */
import { outputType } from "./cost/output-types.ts";
import type { ComfyNode } from "./model.ts";

/** Kinds of data that cross between GPUs as files. */
export type HandoffKind = "IMAGE" | "MASK";

export interface SegmentPromptNode {
  readonly class_type: string;
  readonly inputs: Record<string, unknown>;
  readonly _meta?: { readonly title: string };
}

/** An output of the segment that a later stage reads: saved by `saveNode` as `<prefix>_00001_.png`, … */
export interface SegmentOutput {
  readonly node: string;
  readonly output: number;
  readonly kind: HandoffKind;
  readonly saveNode: string;
  readonly prefix: string;
}

/** An output of an earlier stage that this segment reads, from `files` (in batch order) on its server. */
export interface SegmentInput {
  readonly node: string;
  readonly output: number;
  readonly kind: HandoffKind;
  readonly files: readonly string[];
}

export interface SegmentPrompt {
  /** The API prompt to send as `prompt` of ComfyUI's `POST /prompt`. */
  readonly prompt: Record<string, SegmentPromptNode>;
  /** Outputs to fetch after the run (`/view`) for the stages that read them, in node order. */
  readonly outputs: SegmentOutput[];
  /** Outputs of earlier stages uploaded to this server before the run (`/upload/image`). */
  readonly inputs: SegmentInput[];
  /** The prompt's own nodes in this prompt: the stage's nodes, then the ancestors copied into it. Added `gf-` nodes are not listed. */
  readonly ownNodes: string[];
}

/** Where a handoff file's names come from: the names an earlier stage's output has on this stage's server. */
export type HandoffFiles = (fromNode: string, output: number) => readonly string[] | undefined;

/** Node ids ComfyUI accepts in a prompt here; the ids of added nodes are built to match. */
const NODE_ID = /^[A-Za-z0-9_.:-]+$/;

/**
 * The `filename_prefix` of the SaveImage that hands output `output` of node `nodeId` to another GPU.
 * ':' and '.' are replaced because ComfyUI writes the prefix into file names (and '.' would read as an
 * extension); the output index keeps two outputs of one node apart.
 */
export function handoffPrefix(nodeId: string, output: number): string {
  return `gf-handoff-${nodeId.replace(/[:.]/g, "_")}-${output}`;
}

/**
 * The files of one handoff among `names` (a server's file names, optionally under a subfolder), in
 * batch order. ComfyUI's SaveImage writes `<prefix>_00001_.png`, `<prefix>_00002_.png`, …, one per image,
 * continuing the counter of files already there: pass the names the run's history lists, not a folder's.
 */
export function handoffFilesOf(names: readonly string[], nodeId: string, output: number): string[] {
  const prefix = handoffPrefix(nodeId, output);
  const numbered: { name: string; counter: number }[] = [];
  for (const name of names) {
    const base = name.slice(name.lastIndexOf("/") + 1);
    if (!base.startsWith(`${prefix}_`)) continue;
    const match = /^_(\d+)_\.png$/.exec(base.slice(prefix.length));
    if (match) numbered.push({ name, counter: Number(match[1]) });
  }
  return numbered.sort((a, b) => a.counter - b.counter).map((n) => n.name);
}

/** The kind of a link's data when it crosses as files, else undefined. */
function handoffKind(from: ComfyNode, output: number): HandoffKind | undefined {
  const type = outputType(from.classType, output);
  return type === "IMAGE" || type === "MASK" ? type : undefined;
}

/** A node as ComfyUI's API format writes it: literals and links in one `inputs`, the title under `_meta`. */
function toPromptNode(node: ComfyNode): SegmentPromptNode {
  const inputs: Record<string, unknown> = structuredClone({ ...node.inputs });
  for (const link of node.links) inputs[link.input] = [link.from, link.output];
  return { class_type: node.classType, inputs, ...(node.title !== undefined && { _meta: { title: node.title } }) };
}

/**
 * The API prompt of one stage: the nodes `stageNodeIds` of `nodes`, with the handoffs described in the
 * file's header. `handoffs` names the files an earlier stage's IMAGE or MASK output has on this stage's
 * server; it is asked once per crossing output, and an output with no files is an error (that stage has
 * not produced it). Throws an Error naming the node for an unknown or dangling node id.
 */
export function buildSegmentPrompt(nodes: readonly ComfyNode[], stageNodeIds: readonly string[], handoffs: HandoffFiles): SegmentPrompt {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const own = new Set<string>();
  for (const id of stageNodeIds) {
    if (!byId.has(id)) throw new Error(`stage node '${id}' is not a node of the prompt`);
    own.add(id);
  }
  const ids = new IdAllocator(nodes.map((n) => n.id));
  const added: [string, SegmentPromptNode][] = [];
  const inputs: SegmentInput[] = [];
  const loaded = new Map<string, [string, number]>();

  /** Where a crossing IMAGE or MASK comes from inside this prompt: its LoadImage (and ImageBatch, ImageToMask) chain. */
  const handoffSource = (from: ComfyNode, output: number, kind: HandoffKind): [string, number] => {
    const key = `${from.id}\u0000${output}`;
    const known = loaded.get(key);
    if (known) return known;
    const files = handoffs(from.id, output);
    if (files === undefined || files.length === 0) {
      throw new Error(`node '${from.id}' (${from.classType}) output ${output} (${kind}) has no handoff file: the stage that makes it has not produced it`);
    }
    inputs.push({ node: from.id, output, kind, files: [...files] });
    const what = `${kind} of node ${from.id} output ${output}`;
    let source: [string, number] | undefined;
    files.forEach((file, i) => {
      const load = ids.take(`gf-load-${from.id}-${output}-${i + 1}`);
      added.push([load, { class_type: "LoadImage", inputs: { image: file }, _meta: { title: `gf: load ${what} (image ${i + 1} of ${files.length})` } }]);
      if (source === undefined) source = [load, 0];
      else {
        const batch = ids.take(`gf-batch-${from.id}-${output}-${i + 1}`);
        added.push([batch, { class_type: "ImageBatch", inputs: { image1: source, image2: [load, 0] }, _meta: { title: `gf: batch ${what} (images 1 to ${i + 1})` } }]);
        source = [batch, 0];
      }
    });
    if (kind === "MASK") {
      const toMask = ids.take(`gf-image-to-mask-${from.id}-${output}`);
      added.push([toMask, { class_type: "ImageToMask", inputs: { image: source, channel: "red" }, _meta: { title: `gf: ${what} back to a mask` } }]);
      source = [toMask, 0];
    }
    loaded.set(key, source!);
    return source!;
  };

  // Walk the stage's nodes, then the ancestors copied in, rewriting crossing IMAGE and MASK links.
  const included = new Set(own);
  const queue = nodes.filter((n) => own.has(n.id));
  const rewritten = new Map<string, SegmentPromptNode>();
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    const promptNode = toPromptNode(node);
    for (const link of node.links) {
      if (included.has(link.from)) continue;
      const from = byId.get(link.from);
      if (from === undefined) throw new Error(`node '${node.id}' input '${link.input}' links to node '${link.from}', which is not in the prompt`);
      const kind = handoffKind(from, link.output);
      if (kind !== undefined) {
        promptNode.inputs[link.input] = handoffSource(from, link.output, kind);
        continue;
      }
      // Strings, numbers, booleans and audio have no core file round trip: the node that makes them runs
      // here too. The segmenter lets only portable types cross, and it ties a link of unknown type (a
      // custom node's output) to one GPU, so an unknown or GPU-resident type only crosses when a caller
      // cut the graph some other way; copying its maker keeps that prompt runnable all the same.
      included.add(from.id);
      queue.push(from);
    }
    rewritten.set(node.id, promptNode);
  }

  const prompt: Record<string, SegmentPromptNode> = {};
  // Prompt order: the nodes as the original prompt lists them, then the added ones, so that every node id given returns the prompt unchanged.
  for (const node of nodes) if (rewritten.has(node.id)) prompt[node.id] = rewritten.get(node.id)!;

  const outputs: SegmentOutput[] = [];
  for (const [node, output, kind] of crossingOutputs(nodes, own, byId)) {
    const what = `${kind} of node ${node} output ${output}`;
    let images: [string, number] = [node, output];
    if (kind === "MASK") {
      const toImage = ids.take(`gf-mask-to-image-${node}-${output}`);
      added.push([toImage, { class_type: "MaskToImage", inputs: { mask: images }, _meta: { title: `gf: ${what} as an image` } }]);
      images = [toImage, 0];
    }
    const prefix = handoffPrefix(node, output);
    const saveNode = ids.take(`gf-save-${node}-${output}`);
    added.push([saveNode, { class_type: "SaveImage", inputs: { images, filename_prefix: prefix }, _meta: { title: `gf: save ${what} for the next GPU` } }]);
    outputs.push({ node, output, kind, saveNode, prefix });
  }
  for (const [id, n] of added) prompt[id] = n;

  const ownNodes = [...own, ...queue.filter((n) => !own.has(n.id)).map((n) => n.id)];
  return { prompt, outputs, inputs, ownNodes };
}

/** The stage's (node, output) pairs of IMAGE or MASK that a node of another stage reads, once each, in node and output order. */
function crossingOutputs(nodes: readonly ComfyNode[], own: ReadonlySet<string>, byId: ReadonlyMap<string, ComfyNode>): [string, number, HandoffKind][] {
  const found = new Map<string, [string, number, HandoffKind]>();
  for (const consumer of nodes) {
    if (own.has(consumer.id)) continue;
    for (const link of consumer.links) {
      if (!own.has(link.from)) continue;
      const kind = handoffKind(byId.get(link.from)!, link.output);
      if (kind !== undefined) found.set(`${link.from}\u0000${link.output}`, [link.from, link.output, kind]);
    }
  }
  const position = new Map(nodes.map((n, i) => [n.id, i]));
  return [...found.values()].sort((a, b) => position.get(a[0])! - position.get(b[0])! || a[1] - b[1]);
}

/** Ids for added nodes: `gf-…`, never one the prompt already has (a `-2`, `-3`, … is appended then). */
class IdAllocator {
  private readonly taken: Set<string>;

  constructor(existing: Iterable<string>) {
    this.taken = new Set(existing);
  }

  take(base: string): string {
    // Node ids may hold only these characters; anything else in a base (there should be none) becomes '_'.
    const clean = NODE_ID.test(base) ? base : base.replace(/[^A-Za-z0-9_.:-]/g, "_");
    let id = clean;
    for (let n = 2; this.taken.has(id); n++) id = `${clean}-${n}`;
    this.taken.add(id);
    return id;
  }
}
