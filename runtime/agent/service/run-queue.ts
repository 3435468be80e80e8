/**
 * What the API asks of the part that runs work: the agent loop itself on a single node or on the leading
 * control plane, and on a control plane that does not lead, the store alone (the leader takes up what the
 * store accepted, and stops what the store cancelled).
 */
import type { EventEmitter } from "node:events";
import type { Stage, WorkflowGraph } from "../../graph/index.ts";
import type { WaitReason } from "../../scheduler/index.ts";
import type { RunRecord } from "../store/types.ts";
import type { RunningStage } from "./loop.ts";

export interface RunQueue {
  /** Emits `run` with a run id whenever something of that run changed here. */
  readonly changes: EventEmitter;
  readonly activeRunCount: number;
  accept(run: Pick<RunRecord, "id" | "tenant" | "priority">, stages: readonly Stage[], graph: WorkflowGraph | undefined): void;
  cancel(tenant: string, runId: string): Promise<RunRecord | undefined>;
  explain(runId: string, stageId: string): WaitReason | null;
  runningStages(): RunningStage[];
  activeRunsOf(tenant: string): Array<{ readonly id: string; readonly stages: ReadonlyMap<string, Stage> }>;
  stageSpec(runId: string, stageId: string): Stage | undefined;
}
