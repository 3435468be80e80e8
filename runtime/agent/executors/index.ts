/** Executors: run one attempt of a stage as a process, or simulate it from the cost model. */
import type { Stage } from "../../graph/model.ts";
import type { Executor } from "./types.ts";

export * from "./types.ts";
export { ProcessExecutor, stageEnvironment, type ProcessExecutorOptions } from "./process-executor.ts";
export { LocalSpawner, descendantsOf, type SignalScope, type SpawnedStage, type StageLaunch, type StageSpawner } from "./spawner.ts";
export { SimulatedExecutor, type SimulatedExecutorOptions } from "./simulated-executor.ts";
export { attemptPaths, commitOutputs, prepareWorkspace, type AttemptPaths, type InputMode } from "./workspace.ts";
export { artifactNameProblem } from "./output-names.ts";
export { stopOrphanedAttempt, type OrphanCandidate, type OrphanOutcome } from "./orphans.ts";

/**
 * A stage with a command runs as a process; a ComfyUI stage (its nodes, no command) runs on a ComfyUI
 * server when one is configured; anything else can only be simulated.
 */
export function executorFor(stage: Stage, executors: { readonly process: Executor; readonly simulated: Executor; readonly comfyui?: Executor }): Executor {
  if (stage.run && stage.run.command.length > 0) return executors.process;
  if (executors.comfyui !== undefined && stage.comfyNodes !== undefined && stage.comfyNodes.length > 0) return executors.comfyui;
  return executors.simulated;
}
