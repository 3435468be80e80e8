/** The scheduler's own input and output types: minimal, so the hot path stays fast. */
import type { PriorityClass } from "../config/schema.ts";

export type { PriorityClass };

/** One stage of a run as the scheduler sees it. */
export interface StageSpec {
  readonly id: string;
  /** Ids of stages of the same run that must finish first. */
  readonly needs: readonly string[];
  /** GPUs needed at once, all on one node; 0 for CPU-only stages. */
  readonly gpus: number;
  /** VRAM needed on each GPU while the stage runs, in MiB (its model's weights included). */
  readonly vramMiB: number;
  /** Model the stage loads; a GPU that still holds it skips the load. */
  readonly model?: string;
  /** VRAM the model keeps when it stays resident after the stage; defaults to vramMiB. */
  readonly modelMiB?: number;
  /** Expected seconds of work once the model is loaded. */
  readonly durationS: number;
  /** Seconds to load the model onto a GPU that does not hold it. */
  readonly modelLoadS: number;
}

export interface RunSpec {
  readonly id: string;
  readonly tenant: string;
  readonly priority: PriorityClass;
  readonly stages: readonly StageSpec[];
  /** Plan the run's known DAG ahead (several list schedules, keep the best) instead of plain critical-path rank. */
  readonly planAhead?: boolean;
}

/**
 * Queue levels, lowest first: fresh batch work, batch work lifted once by aging, then interactive
 * work (which batch work reaches after waiting twice the aging period).
 */
export type QueueLevel = "batch" | "batch-aged" | "interactive";

/** Why a stage waits. */
export type WaitReason =
  | { readonly code: "dependencies"; readonly pending: readonly string[] }
  | { readonly code: "no-fit"; readonly needMiB: number; readonly bestAvailableMiB: number; readonly largestGpuMiB: number; readonly freeGpus: number }
  | { readonly code: "gang"; readonly gpus: number; readonly needMiB: number; readonly bestNode: string | null; readonly bestNodeFitting: number }
  | { readonly code: "quota"; readonly resource: "gpus" | "vram"; readonly held: number; readonly requested: number; readonly quota: number }
  | { readonly code: "priority"; readonly ahead: number; readonly level: QueueLevel }
  | { readonly code: "reserved"; readonly forStage: string }
  /** Cheaper to wait for a busy GPU that holds the model than to load it elsewhere. */
  | { readonly code: "affinity"; readonly model: string; readonly gpu: string; readonly expectedFreeInS: number; readonly modelLoadS: number }
  /** The free GPUs that fit are the scarce large ones, kept for waiting stages that fit nowhere else. */
  | { readonly code: "kept-for-larger"; readonly needMiB: number; readonly waitingLarger: number }
  /** Its last attempt failed: it backs off, and may be placed again from `until` (the scheduler's clock, seconds). */
  | { readonly code: "backoff"; readonly until: number };

export interface PlacementReason {
  /** VRAM asked per GPU and what was available there before placing (after headroom), in MiB. */
  readonly needMiB: number;
  readonly availableMiB: readonly number[];
  readonly headroomMiB: number;
  /** Whether the stage's model was already resident on all its GPUs (no load). */
  readonly residentModel: boolean;
  readonly modelLoadS: number;
  /** `gpu`: an input was produced on the same GPU; `node`: on the same node; `none` otherwise. */
  readonly inputLocality: "gpu" | "node" | "none";
  /** Resident models unloaded (least recently used first) to make room. */
  readonly evicted: readonly { readonly gpu: string; readonly model: string; readonly mib: number }[];
  /** Queue level the stage was taken at. */
  readonly level: QueueLevel;
  readonly aged: boolean;
  /** The tenant's weighted dominant share when the stage was picked (lower goes first). */
  readonly tenantShare: number;
  /** Candidate GPUs compared for this stage. */
  readonly candidates: number;
}

export interface Placement {
  readonly kind: "placed";
  readonly runId: string;
  readonly stageId: string;
  readonly tenant: string;
  readonly gpuIds: readonly string[];
  /** Inventory indexes of gpuIds. */
  readonly gpus: readonly number[];
  /** Models the executor must unload first, per GPU index. */
  readonly evict: readonly { readonly gpu: number; readonly model: string }[];
  readonly reason: PlacementReason;
}

export interface Waiting {
  readonly kind: "waiting";
  readonly runId: string;
  readonly stageId: string;
  readonly reason: WaitReason;
}

/** A running batch stage stopped so an interactive stage can start (policy `kill` only); it is queued again. */
export interface Kill {
  readonly kind: "killed";
  readonly runId: string;
  readonly stageId: string;
  readonly gpus: readonly number[];
  readonly forRunId: string;
  readonly forStageId: string;
}

export type Decision = Placement | Waiting | Kill;

export interface SubmitAccepted {
  readonly accepted: true;
}
export interface SubmitRejected {
  readonly accepted: false;
  readonly stageId?: string;
  readonly field: string;
  readonly message: string;
}
export type SubmitResult = SubmitAccepted | SubmitRejected;
