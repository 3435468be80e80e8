/** The stages a scheduler places: declared ones for native workflows, GPU-affine segments for ComfyUI. */
import type { Stage, WorkflowGraph } from "./model.ts";
import { CostModel } from "./cost/cost-model.ts";
import { segmentComfyGraph } from "./cost/segment.ts";

/**
 * Estimate assumed for a native stage that declares none: a minute of work, and (when it names a
 * model) ten seconds to load it. Declare `estimate` on stages to plan with real figures.
 */
export const DEFAULT_NATIVE_ESTIMATE = { durationS: 60, modelLoadS: 0, modelLoadWithModelS: 10 } as const;

/**
 * The schedulable stages of a workflow. Native: the declared stages, with the default estimate filled
 * in where none is declared. ComfyUI: the nodes grouped into GPU-affine segments, with resources and
 * estimates from the cost model (observed figures where it has them).
 */
export function stagesFor(graph: WorkflowGraph, costModel?: CostModel): Stage[] {
  if (graph.format === "comfyui") {
    if (!graph.comfyNodes) throw new Error(`workflow '${graph.name}' is a ComfyUI workflow without its nodes: build it with parseWorkflow`);
    const stages = segmentComfyGraph(graph.comfyNodes, costModel ?? new CostModel()).stages;
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
