/** The stages a scheduler places: declared ones for native workflows, GPU-affine segments for ComfyUI. */
import type { ComfyUiMode } from "../config/schema.ts";
import type { Stage, WorkflowGraph } from "./model.ts";
import { CostModel } from "./cost/cost-model.ts";
import { segmentComfyGraph } from "./cost/segment.ts";

/**
 * Estimate assumed for a native stage that declares none: a minute of work, and (when it names a
 * model) ten seconds to load it. Declare `estimate` on stages to plan with real figures.
 */
export const DEFAULT_NATIVE_ESTIMATE = { durationS: 60, modelLoadS: 0, modelLoadWithModelS: 10 } as const;

/** The id of the one stage of a ComfyUI workflow scheduled whole (`comfyuiMode: whole-graph`). */
export const WHOLE_GRAPH_STAGE_ID = "graph";

export interface StagesOptions {
  /**
   * ComfyUI workflows: `segmented` (the default) schedules each GPU-affine segment as a stage of its
   * own; `whole-graph` schedules the whole prompt as one stage, for graphs that must not be split.
   */
  readonly comfyuiMode?: ComfyUiMode;
}

/**
 * The schedulable stages of a workflow. Native: the declared stages, with the default estimate filled
 * in where none is declared. ComfyUI: the nodes grouped into GPU-affine segments, with resources and
 * estimates from the cost model (observed figures where it has them), or in whole-graph mode one stage
 * holding every node.
 */
export function stagesFor(graph: WorkflowGraph, costModel?: CostModel, options: StagesOptions = {}): Stage[] {
  if (graph.format === "comfyui") {
    if (!graph.comfyNodes) throw new Error(`workflow '${graph.name}' is a ComfyUI workflow without its nodes: build it with parseWorkflow`);
    const segments = segmentComfyGraph(graph.comfyNodes, costModel ?? new CostModel()).stages;
    const stages = options.comfyuiMode === "whole-graph" ? [wholeGraphStage(graph.comfyNodes.map((n) => n.id), segments)] : segments;
    return graph.priority ? stages.map((s) => ({ ...s, priority: s.priority ?? graph.priority })) : stages;
  }
  return graph.stages.map((stage) =>
    stage.estimate
      ? stage
      : {
          ...stage,
          estimate: {
            durationS: DEFAULT_NATIVE_ESTIMATE.durationS,
            modelLoadS: stage.resources.model !== undefined ? DEFAULT_NATIVE_ESTIMATE.modelLoadWithModelS : DEFAULT_NATIVE_ESTIMATE.modelLoadS,
          },
        },
  );
}

/**
 * One stage for the whole prompt, from its segments: one GPU when any segment needs one; the largest
 * segment's VRAM, since one ComfyUI server runs the segments one after another and unloads models it
 * no longer needs when memory runs short; the first GPU segment's model (the one loaded first, so the
 * one residency can save); the segments' work and model loads added up.
 */
function wholeGraphStage(nodeIds: readonly string[], segments: readonly Stage[]): Stage {
  const gpuSegments = segments.filter((s) => s.resources.gpus > 0);
  const model = gpuSegments[0]?.resources.model;
  const sum = (pick: (s: Stage) => number) => Math.round(segments.reduce((total, s) => total + pick(s), 0) * 1000) / 1000;
  return {
    id: WHOLE_GRAPH_STAGE_ID,
    needs: [],
    resources: {
      gpus: gpuSegments.length > 0 ? 1 : 0,
      vramMiB: Math.max(0, ...gpuSegments.map((s) => s.resources.vramMiB)),
      ...(model !== undefined && { model }),
    },
    estimate: { durationS: sum((s) => s.estimate?.durationS ?? 0), modelLoadS: sum((s) => s.estimate?.modelLoadS ?? 0) },
    comfyNodes: [...nodeIds],
  };
}
