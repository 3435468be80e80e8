/**
 * Which models each ComfyUI server holds: the checkpoints, VAEs, LoRAs and upscale models its prompts
 * loaded since its last (re)start. ComfyUI keeps models loaded between prompts and unloads them all
 * after an out-of-memory error, so a restart (a new generation of the server) or an OOM empties the list.
 * Names are the files as the prompt writes them: the names the scheduler's resident models carry.
 */
import { ComfyGraphContext } from "../../../graph/cost/context.ts";
import { modelsLoadedBy } from "../../../graph/cost/node-costs.ts";
import type { ComfyNode } from "../../../graph/model.ts";

/** The model files the given nodes load, as their loader inputs name them. */
export function modelsOfNodes(nodes: readonly ComfyNode[], ids: readonly string[]): string[] {
  const context = new ComfyGraphContext(nodes);
  const names = new Set<string>();
  for (const id of ids) {
    const node = context.node(id);
    if (node !== undefined) for (const m of modelsLoadedBy(node, context)) names.add(m.name);
  }
  return [...names];
}

export class Residency {
  private readonly byServer = new Map<string, { generation: number; models: Set<string> }>();

  /** The models a server holds now (none when it restarted since they were loaded). */
  of(gpuId: string, generation: number): string[] {
    const entry = this.byServer.get(gpuId);
    return entry === undefined || entry.generation !== generation ? [] : [...entry.models].sort();
  }

  /** A prompt ran to the end: what it loaded stays resident. */
  loaded(gpuId: string, generation: number, models: readonly string[]): void {
    let entry = this.byServer.get(gpuId);
    if (entry === undefined || entry.generation !== generation) {
      entry = { generation, models: new Set() };
      this.byServer.set(gpuId, entry);
    }
    for (const m of models) entry.models.add(m);
  }

  /** An out-of-memory error: ComfyUI unloaded everything. */
  cleared(gpuId: string, generation: number): void {
    this.byServer.set(gpuId, { generation, models: new Set() });
  }
}
