/** Adapts the workflow graph model's stages to the scheduler's minimal stage type. */
import type { Stage, WorkflowGraph } from "../graph/model.ts";
import type { PriorityClass, RunSpec, StageSpec } from "./types.ts";

/** Seconds a stage with no estimate is assumed to take, so it still gets a rank. */
export const UNKNOWN_DURATION_S = 10;

export function stageSpecFromGraph(stage: Stage): StageSpec {
  return {
    id: stage.id,
    needs: stage.needs,
    gpus: stage.resources.gpus,
    vramMiB: stage.resources.vramMiB,
    ...(stage.resources.model !== undefined ? { model: stage.resources.model } : {}),
    durationS: stage.estimate?.durationS ?? UNKNOWN_DURATION_S,
    modelLoadS: stage.resources.model !== undefined ? (stage.estimate?.modelLoadS ?? 0) : 0,
  };
}

export function runSpecFromStages(
  id: string,
  tenant: string,
  stages: readonly Stage[],
  priority: PriorityClass,
  planAhead = false,
): RunSpec {
  return { id, tenant, priority, stages: stages.map(stageSpecFromGraph), planAhead };
}

/** Priority of a graph: its own, else that of its first stage that declares one, else batch. */
export function graphPriority(graph: WorkflowGraph, stages: readonly Stage[]): PriorityClass {
  return graph.priority ?? stages.find((s) => s.priority !== undefined)?.priority ?? "batch";
}
