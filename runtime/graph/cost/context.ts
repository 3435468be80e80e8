/**
 * Lookups across a ComfyUI graph that a node's cost depends on: the diffusion model a sampler runs,
 * the resolution and frame count its latent has, the steps its sigmas come from. All walks are
 * iterative and bounded.
 */
import type { ComfyNode } from "../model.ts";
import { outputType } from "./output-types.ts";

/** Nodes an upstream search visits at most, so a pathological graph costs bounded time. */
const MAX_VISITS = 512;

export interface Resolution {
  readonly width: number;
  readonly height: number;
  /** Video frames (1 for images). */
  readonly frames: number;
  readonly batch: number;
  /** Audio clips: seconds of audio. */
  readonly seconds?: number;
  /** Whether the figures came from the graph or are the defaults. */
  readonly known: boolean;
}

export const DEFAULT_RESOLUTION: Resolution = { width: 1024, height: 1024, frames: 1, batch: 1, known: false };

export class ComfyGraphContext {
  private readonly byId: ReadonlyMap<string, ComfyNode>;
  private readonly resolutions = new Map<string, Resolution>();

  constructor(nodes: readonly ComfyNode[]) {
    this.byId = new Map(nodes.map((n) => [n.id, n]));
  }

  node(id: string): ComfyNode | undefined {
    return this.byId.get(id);
  }

  /** The type a link carries, from the producing node's class. */
  linkType(from: string, output: number): string | undefined {
    const source = this.byId.get(from);
    return source ? outputType(source.classType, output) : undefined;
  }

  /**
   * Breadth-first search up the links of `start` whose type passes `follow`, returning the first node
   * (not `start` itself) that `match` accepts.
   */
  findUpstream(start: ComfyNode, follow: (type: string | undefined) => boolean, match: (node: ComfyNode) => boolean): ComfyNode | undefined {
    const seen = new Set<string>([start.id]);
    const queue: ComfyNode[] = [start];
    for (let head = 0; head < queue.length && seen.size <= MAX_VISITS; head++) {
      for (const link of queue[head]!.links) {
        if (seen.has(link.from) || !follow(this.linkType(link.from, link.output))) continue;
        seen.add(link.from);
        const next = this.byId.get(link.from);
        if (!next) continue;
        if (match(next)) return next;
        queue.push(next);
      }
    }
    return undefined;
  }

  /** Every node up the links of `start` whose type passes `follow` (bounded), nearest first. */
  collectUpstream(start: ComfyNode, follow: (type: string | undefined) => boolean): ComfyNode[] {
    const seen = new Set<string>([start.id]);
    const out: ComfyNode[] = [];
    const queue: ComfyNode[] = [start];
    for (let head = 0; head < queue.length && seen.size <= MAX_VISITS; head++) {
      for (const link of queue[head]!.links) {
        if (seen.has(link.from) || !follow(this.linkType(link.from, link.output))) continue;
        seen.add(link.from);
        const next = this.byId.get(link.from);
        if (!next) continue;
        out.push(next);
        queue.push(next);
      }
    }
    return out;
  }

  /**
   * The size of the image, latent or video a node works on: its own width/height inputs, else the
   * nearest upstream node along latent and pixel links that states them.
   */
  resolutionOf(node: ComfyNode): Resolution {
    const cached = this.resolutions.get(node.id);
    if (cached) return cached;
    const own = resolutionFromInputs(node);
    const found =
      own ??
      resolutionFromInputs(
        this.findUpstream(node, (t) => t === undefined || t === "LATENT" || t === "IMAGE" || t === "MASK" || t === "CONDITIONING", (n) => resolutionFromInputs(n) !== undefined) ??
          node,
      ) ??
      DEFAULT_RESOLUTION;
    this.resolutions.set(node.id, found);
    return found;
  }

  /** Sampling steps: the node's own `steps`, else those of the scheduler its sigmas come from. */
  stepsOf(node: ComfyNode): number | undefined {
    const own = positiveNumber(node.inputs.steps);
    if (own !== undefined) return own;
    const scheduler = this.findUpstream(node, (t) => t === "SIGMAS", (n) => positiveNumber(n.inputs.steps) !== undefined);
    return scheduler ? positiveNumber(scheduler.inputs.steps) : undefined;
  }
}

function positiveNumber(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Width/height (or megapixels, or audio seconds) stated by a node's literal inputs. */
export function resolutionFromInputs(node: ComfyNode): Resolution | undefined {
  const inputs = node.inputs;
  const batch = positiveNumber(inputs.batch_size) ?? 1;
  const frames = positiveNumber(inputs.length) ?? positiveNumber(inputs.video_frames) ?? positiveNumber(inputs.frames) ?? positiveNumber(inputs.num_frames) ?? 1;
  const width = positiveNumber(inputs.width);
  const height = positiveNumber(inputs.height);
  if (width !== undefined && height !== undefined) return { width, height, frames: Math.round(frames), batch: Math.round(batch), known: true };
  const megapixels = positiveNumber(inputs.megapixels);
  if (megapixels !== undefined) {
    const side = Math.round(Math.sqrt(megapixels * 1024 * 1024));
    return { width: side, height: side, frames: 1, batch: 1, known: true };
  }
  const seconds = positiveNumber(inputs.seconds);
  if (seconds !== undefined && /audio/i.test(node.classType)) return { width: 0, height: 0, frames: 1, batch: Math.round(batch), seconds, known: true };
  return undefined;
}
