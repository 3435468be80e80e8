/**
 * Feeding a whole stage's measurements back into the per-node cost model. Executors see a ComfyUI
 * segment run as one unit (its wall time and its GPU's peak memory); the measurements are shared out
 * over the stage's nodes in proportion to their current estimates, so a stage that ran twice as long
 * as estimated makes each of its nodes count twice as long next time.
 */
import { ValidationError } from "../../config/errors.ts";
import type { Stage, WorkflowGraph } from "../model.ts";
import type { CostModel } from "./cost-model.ts";

export interface StageObservation {
  /** Seconds the stage ran, not counting model loading. */
  readonly durationS: number;
  /** Peak GPU memory while the stage ran, in MiB, including the model weights it holds. */
  readonly peakVramMiB: number;
}

/** Records a run of a segmented ComfyUI stage in the cost model. Returns the node keys it updated. */
export function observeStage(costModel: CostModel, graph: WorkflowGraph, stage: Stage, observation: StageObservation): string[] {
  if (graph.format !== "comfyui" || !graph.comfyNodes) {
    throw new ValidationError("stage observation", [{ field: "graph", message: "must be a ComfyUI workflow: native stages carry their own estimates" }]);
  }
  const wanted = new Set(stage.comfyNodes ?? []);
  const nodes = graph.comfyNodes.filter((n) => wanted.has(n.id));
  if (nodes.length === 0 || nodes.length !== wanted.size) {
    throw new ValidationError("stage observation", [{ field: "stage.comfyNodes", message: `must name nodes of workflow '${graph.name}': pass a stage returned by stagesFor for this graph` }]);
  }
  if (!(Number.isFinite(observation.durationS) && observation.durationS >= 0) || !(Number.isFinite(observation.peakVramMiB) && observation.peakVramMiB >= 0)) {
    throw new ValidationError("stage observation", [{ field: "observation", message: "durationS and peakVramMiB must be zero or more" }]);
  }
  // Estimates in the context of the whole graph, as segmentation made them.
  const all = costModel.estimateNodes(graph.comfyNodes);
  const estimates = nodes.map((n) => all.get(n.id)!);
  const resident = new Map<string, number>();
  for (const e of estimates) for (const m of e.loads) resident.set(m.name, m.sizeMiB);
  const residentMiB = [...resident.values()].reduce((a, b) => a + b, 0);
  const workingObserved = Math.max(0, observation.peakVramMiB - residentMiB);
  const workingEstimated = Math.max(0, ...estimates.map((e) => e.vramMiB));
  const secondsEstimated = estimates.reduce((sum, e) => sum + e.durationS, 0);

  const updated: string[] = [];
  for (const e of estimates) {
    const durationS = secondsEstimated > 0 ? (observation.durationS * e.durationS) / secondsEstimated : observation.durationS / estimates.length;
    const peakVramMiB = workingEstimated > 0 ? (workingObserved * e.vramMiB) / workingEstimated : 0;
    costModel.observe(e.key, { durationS, peakVramMiB });
    updated.push(e.key);
  }
  return updated;
}
