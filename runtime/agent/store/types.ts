/**
 * The agent's durable state: runs, their stages, attempts, placements, events and artifacts.
 * The interface is asynchronous and SQL-shaped so that the embedded SQLite store and a PostgreSQL
 * store (one database shared by several agents) are interchangeable behind it.
 */
import type { PriorityClass } from "../../config/schema.ts";
import type { Stage, StageResources, WorkflowFormat } from "../../graph/model.ts";

export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type StageStatus = "waiting" | "ready" | "placed" | "running" | "sealing" | "succeeded" | "failed" | "cancelled";
export type AttemptStatus = "placed" | "running" | "sealing" | "succeeded" | "failed" | "interrupted" | "cancelled";

export const RUN_STATUSES: readonly RunStatus[] = ["queued", "running", "succeeded", "failed", "cancelled"];
export const STAGE_STATUSES: readonly StageStatus[] = ["waiting", "ready", "placed", "running", "sealing", "succeeded", "failed", "cancelled"];
export const ATTEMPT_STATUSES: readonly AttemptStatus[] = ["placed", "running", "sealing", "succeeded", "failed", "interrupted", "cancelled"];
/** Attempt states in which a stage holds GPUs (and maybe a process). */
export const OPEN_ATTEMPT_STATUSES: readonly AttemptStatus[] = ["placed", "running", "sealing"];
export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ["succeeded", "failed", "cancelled"];

/** A stage as submitted: the graph model's stage (what to run, estimates) is kept whole. */
export type NewStage = Stage;

export interface NewRun {
  /** The run's id, when the caller chose it (to bind encrypted fields to it); a fresh UUID otherwise. */
  readonly id?: string;
  readonly tenant: string;
  readonly workflow: string;
  readonly format: WorkflowFormat;
  readonly priority: PriorityClass;
  /** Resubmitting with the same tenant and key returns the run created first. */
  readonly idempotencyKey?: string;
  /** The subject (token subject or OIDC `sub`) that submitted the run: it may cancel it without being an admin. */
  readonly submittedBy?: string;
  /** The workflow document as submitted (JSON). */
  readonly document: unknown;
  /** Run inputs as submitted (JSON object). */
  readonly inputs?: Readonly<Record<string, unknown>>;
  readonly stages: readonly NewStage[];
}

export interface RunRecord {
  readonly id: string;
  readonly tenant: string;
  readonly workflow: string;
  readonly format: WorkflowFormat;
  readonly priority: PriorityClass;
  readonly status: RunStatus;
  readonly idempotencyKey: string | null;
  /** Who submitted the run; null for runs stored before submitters were recorded. */
  readonly submittedBy: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface StageRecord {
  readonly runId: string;
  readonly stageId: string;
  readonly status: StageStatus;
  readonly needs: readonly string[];
  readonly resources: StageResources;
  /** The stage as submitted (command, estimates, ComfyUI nodes). */
  readonly spec: Stage;
  /** Attempts made so far. */
  readonly attempts: number;
  readonly updatedAt: string;
}

export interface AttemptRecord {
  readonly id: string;
  readonly runId: string;
  readonly stageId: string;
  /** 1 for the first attempt of a stage, then 2, 3, ... */
  readonly number: number;
  readonly status: AttemptStatus;
  /** Ids of the devices the attempt was placed on. */
  readonly gpus: readonly string[];
  readonly workspace: string | null;
  readonly pid: number | null;
  readonly placedAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly reason: string | null;
  readonly peakVramMiB: number | null;
  /** Whether a simulated executor ran it (no real work was done). */
  readonly simulated: boolean;
}

export interface ArtifactInput {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
  /** Where the committed file lies. */
  readonly path: string;
}

export interface ArtifactRecord extends ArtifactInput {
  readonly runId: string;
  readonly stageId: string;
  readonly attemptId: string;
  readonly createdAt: string;
}

export interface EventRecord {
  /** Monotonic across the store: a client resumes a stream with the last id it saw. */
  readonly id: number;
  readonly runId: string;
  readonly stageId: string | null;
  readonly type: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly at: string;
}

export interface RunDetail {
  readonly run: RunRecord;
  readonly document: unknown;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly stages: readonly StageRecord[];
  readonly attempts: readonly AttemptRecord[];
  readonly artifacts: readonly ArtifactRecord[];
}

/** A stage whose needs have all succeeded, with what the scheduler needs to place it. */
export interface ReadyStage {
  readonly runId: string;
  readonly tenant: string;
  readonly priority: PriorityClass;
  readonly runCreatedAt: string;
  readonly stage: StageRecord;
}

export interface QueueCounts {
  readonly waiting: number;
  readonly ready: number;
  readonly placed: number;
  readonly running: number;
  readonly sealing: number;
}

export interface QueueDepth {
  /** Runs accepted and not finished. */
  readonly activeRuns: number;
  readonly stages: QueueCounts;
  readonly byTenant: Readonly<Record<string, QueueCounts & { readonly activeRuns: number }>>;
}

export interface PlacementInput {
  readonly runId: string;
  readonly stageId: string;
  readonly gpus: readonly string[];
  /** The scheduler's explanation of the decision (JSON). */
  readonly explanation: unknown;
}

export interface FinishInput {
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  readonly peakVramMiB?: number | null;
  readonly simulated?: boolean;
}

export interface FailInput extends FinishInput {
  readonly reason: string;
  /** Put the stage back to ready for a new attempt instead of failing the run. */
  readonly retry: boolean;
}

export interface CancelResult {
  readonly run: RunRecord;
  /** False when the run had already finished. */
  readonly cancelled: boolean;
  /** Attempts that were placed or running: their processes must be stopped. */
  readonly stoppedAttempts: readonly AttemptRecord[];
}

export interface RecoveryReport {
  /** Attempts that were open when the previous agent stopped; closed as `interrupted`. */
  readonly interrupted: readonly AttemptRecord[];
  /** Stages put back to ready, to rerun as new attempts in fresh workspaces. */
  readonly requeuedStages: number;
}

/**
 * GPU use of one tenant's attempts over a time range, per workflow and stage. An attempt counts from
 * its process start to its end (its outputs sealed, or its failure recorded; now, while it runs),
 * clipped to the range: placement and the wait for a process are the agent's time, not the tenant's
 * work, while sealing the outputs still holds the GPUs for the tenant.
 */
export interface UsageRow {
  readonly tenant: string;
  readonly workflow: string;
  readonly stage: string;
  /** Σ GPUs the attempt held × its seconds inside the range. */
  readonly gpuSeconds: number;
  /**
   * Σ GPUs × the VRAM the stage reserved on each (its declared resources.vramMiB, in GiB) × seconds.
   * The reservation, not the measured peak: it is what the scheduler withheld from every other tenant
   * for the whole attempt, it is known for simulated and ComfyUI stages alike, and a peak is only
   * recorded once an attempt ends (a running one has none).
   */
  readonly vramGiBSeconds: number;
  /** Attempts that ran for some time inside the range. */
  readonly attempts: number;
}

export interface RunListOptions {
  readonly status?: RunStatus;
  readonly workflow?: string;
  readonly priority?: PriorityClass;
  /** Only these runs (what a live list re-reads after they changed). */
  readonly ids?: readonly string[];
  /** Keyset paging: only runs after this one in the order (older, or as old with a smaller id). */
  readonly before?: { readonly createdAt: string; readonly id: string };
  /** Default 100, at most 10,000. */
  readonly limit?: number;
  /** Also count each run's stages by status. */
  readonly stageCounts?: boolean;
}

export interface StageCounts {
  readonly total: number;
  readonly succeeded: number;
  /** Stages on GPUs now: placed, running or sealing. */
  readonly running: number;
  readonly failed: number;
}

export type ListedRun = RunRecord & { readonly stageCounts?: StageCounts };

export interface Store {
  /** Accepts a run; idempotent on (tenant, idempotencyKey). Durable when the promise resolves. */
  createRun(run: NewRun): Promise<{ readonly run: RunRecord; readonly created: boolean }>;
  /** A run with its stages, attempts and artifacts; undefined when the tenant has no such run. */
  getRun(tenant: string, runId: string): Promise<RunDetail | undefined>;
  /** A tenant's runs newest first (ties by id, descending), filtered and paged by keyset (see RunListOptions). */
  listRuns(tenant: string, options?: RunListOptions): Promise<ListedRun[]>;
  /** Replaces a run's stored document and inputs (a key rotation rewraps them); false when the tenant has no such run. */
  replaceRunFields(tenant: string, runId: string, fields: { readonly document: unknown; readonly inputs: Readonly<Record<string, unknown>> }): Promise<boolean>;
  /** Folds the write-ahead log into the database and empties it, so replaced values do not linger in it. */
  compact(): Promise<void>;
  /** Runs not finished yet, of every tenant, with their stages: what a restarted scheduler reloads. */
  activeRuns(): Promise<Array<{ readonly run: RunRecord; readonly stages: readonly StageRecord[] }>>;
  /** Stages whose needs have all succeeded, of runs still active, oldest run first. */
  readyStages(limit?: number): Promise<ReadyStage[]>;
  /** ready → placed: opens a new attempt and records the placement decision. */
  markPlaced(placement: PlacementInput): Promise<AttemptRecord>;
  /** placed → running, once the executor has started the attempt. */
  markRunning(attemptId: string, started: { readonly pid: number | null; readonly workspace: string | null }): Promise<AttemptRecord>;
  /** running → sealing: the process exited cleanly and its outputs are being committed. */
  markSealing(attemptId: string, finish?: FinishInput): Promise<AttemptRecord>;
  /** sealing → succeeded, with the committed artifacts; promotes dependents, may finish the run. */
  markSucceeded(attemptId: string, result: FinishInput & { readonly artifacts: readonly ArtifactInput[] }): Promise<AttemptRecord>;
  /** Closes an open attempt as failed; the stage is retried or fails the run. */
  markFailed(attemptId: string, failure: FailInput): Promise<AttemptRecord>;
  /**
   * Closes an open attempt as interrupted (its node was lost) and puts its stage back to ready without
   * counting a failure. Stores whose agents run stages on their own node only (SQLite) need not offer it.
   */
  markInterrupted?(attemptId: string, reason: string): Promise<AttemptRecord>;
  cancelRun(tenant: string, runId: string): Promise<CancelResult | undefined>;
  /** On start: closes every open attempt as interrupted and puts its stage back to ready. */
  recover(): Promise<RecoveryReport>;
  /** Events of a run after the given event id (0 for all); undefined when the tenant has no such run. */
  eventsSince(tenant: string, runId: string, afterEventId: number, limit?: number): Promise<EventRecord[] | undefined>;
  /** Artifacts committed by the given stages of a run: the inputs of a stage that needs them. */
  artifactsOf(runId: string, stageIds: readonly string[]): Promise<ArtifactRecord[]>;
  queueDepth(): Promise<QueueDepth>;
  /**
   * The tenant's GPU use over [from, to) (ISO times), one row per workflow and stage, ordered by them.
   * RangeError when a time is not an ISO time or `to` is not after `from`.
   */
  usage(tenant: string, from: string, to: string): Promise<UsageRow[]>;
  /**
   * The tenant's last `runs` finished runs of a workflow (newest first, at most 1000), each with the seconds
   * its succeeded attempts took, from their process start to their end (see stage-times.ts).
   */
  stageTimes(tenant: string, workflow: string, runs: number): Promise<WorkflowRunTimes[]>;
  close(): Promise<void>;
}

/** A finished run of a workflow, with the time each of its stages that succeeded took. */
export interface WorkflowRunTimes {
  readonly runId: string;
  readonly status: RunStatus;
  readonly createdAt: string;
  readonly stages: ReadonlyArray<{ readonly stageId: string; readonly seconds: number }>;
}

/** A transition that does not apply to the current state (a stale or duplicate call, a race with cancel). */
export class TransitionError extends Error {
  constructor(message: string, readonly current: string | null) {
    super(message);
    this.name = "TransitionError";
  }
}
