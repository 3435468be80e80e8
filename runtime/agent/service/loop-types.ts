/** What the agent loop is built from, and what it keeps of each run and each stage it runs. */
import type { Logger } from "pino";
import type { PriorityClass } from "../../config/schema.ts";
import type { CostModel, Stage, WorkflowGraph } from "../../graph/index.ts";
import type { Scheduler } from "../../scheduler/index.ts";
import type { Executor, RunningAttempt } from "../executors/index.ts";
import type { CommittedArtifact, TraceContext } from "../executors/types.ts";
import type { GpuDevice } from "../inventory/types.ts";
import type { Store } from "../store/types.ts";
import type { AuditEvent } from "../../security/audit/index.ts";
import type { OpenedInputs } from "./sealing.ts";
import type { ModelTags } from "./model-tags.ts";

/** What the loop reports as it works (metrics listen). */
export interface LoopObserver {
  stageStarted(tenant: string, dispatchSeconds: number): void;
  stageFinished(tenant: string, outcome: "succeeded" | "failed" | "cancelled" | "preempted", seconds: number, simulated: boolean): void;
  runFinished(tenant: string, status: "succeeded" | "failed"): void;
  /** An attempt whose process started has ended, whatever the outcome: what it held and for how long. */
  attemptEnded?(usage: AttemptUsage): void;
}

export interface AttemptUsage {
  readonly tenant: string;
  /** The run's workflow name (undefined for a run taken up without one). */
  readonly workflow: string | undefined;
  /** GPUs the attempt held. */
  readonly gpus: number;
  /** VRAM the stage reserved on each of its GPUs. */
  readonly vramMiBPerGpu: number;
  /** From its process start to its end. */
  readonly seconds: number;
  readonly simulated: boolean;
}

/** How an attempt ended, as its trace says. */
export type AttemptTraceOutcome = "succeeded" | "failed" | "cancelled" | "preempted" | "interrupted" | "agent-stopped";

/** What the trace of an attempt records about it (tracing.ts). */
export interface AttemptTraceInfo {
  readonly runId: string;
  readonly tenant: string;
  readonly workflow: string | null;
  readonly stageId: string;
  readonly attempt: number;
  readonly attemptId: string;
  readonly gpus: readonly string[];
  readonly node: string | null;
  /** When the stage became ready (its queue wait began), and when it was placed. */
  readonly readyAtMs: number;
  readonly placedAtMs: number;
}

/** One attempt's trace: the loop reports its time points; the spans go out when it ends. */
export interface AttemptTrace {
  /** The attempt's execution span as W3C trace context, for the work the executor starts. */
  readonly context: TraceContext;
  loadStarted(): void;
  running(): void;
  sealing(): void;
  /** Only the first call counts. */
  end(outcome: AttemptTraceOutcome, details?: { peakVramMiB?: number | null; simulated?: boolean }): void;
}

/** Traces of runs (OpenTelemetry); absent when tracing is off. */
export interface LoopTracing {
  attempt(info: AttemptTraceInfo): AttemptTrace;
  /** Sends what is left; called once the loop stopped. */
  shutdown(): Promise<void>;
}

export interface LoopOptions {
  readonly store: Store;
  readonly scheduler: Scheduler;
  readonly devices: readonly GpuDevice[];
  readonly executors: { readonly process: Executor; readonly simulated: Executor; readonly comfyui?: Executor };
  readonly costModel: CostModel;
  readonly logger: Logger;
  /**
   * The most attempts any stage gets: the bound of each stage's retry.attempts, whose failures are
   * counted from the store (preempted and interrupted attempts not counted). The scheduler must allow
   * at least as many failures (it counts only those since it took the run up), so it never gives up on
   * a stage first; the loop tells it when a stage is not retried.
   */
  readonly maxAttempts: number;
  /** Where relative program paths of stage commands are resolved. */
  readonly commandDir: string;
  readonly observer?: LoopObserver;
  /** Traces of runs, when tracing is on. */
  readonly tracing?: LoopTracing;
  /** Called after the cost model learned from a finished stage (to persist it). */
  readonly onCostModelChange?: () => void;
  /** Records scheduling decisions (placements, preemptions, refusals; not each re-evaluation of waiting work). */
  readonly audit?: (event: AuditEvent) => void;
  /**
   * Seals a committed attempt's outputs (encrypts them where they are kept, removes the plaintext) and
   * returns them as the store records them. Without it the outputs are recorded where the executor put them.
   */
  readonly sealOutputs?: (run: { id: string; tenant: string }, artifacts: CommittedArtifact[]) => Promise<CommittedArtifact[]>;
  /**
   * Makes the committed outputs a stage needs readable to the executor (decrypted), with the run's
   * inputs as a file, and cleans them up after.
   */
  readonly openInputs?: (
    run: { id: string; tenant: string },
    stageId: string,
    attempt: number,
    inputs: ReadonlyArray<{ stageId: string; name: string; path: string }>
  ) => Promise<OpenedInputs>;
  /** Seals an ended attempt's stdout and stderr logs into the data directory and deletes the plaintext. */
  readonly sealLogs?: (run: { id: string; tenant: string }, logs: { stdout: string; stderr: string }) => Promise<void>;
  /** Deletes each attempt's workspace once it ended (its outputs sealed first). */
  readonly discardWorkspaces?: boolean;
  /** Deletes what is left of a run's scratch folders once nothing of it runs any more. */
  readonly discardRun?: (runId: string) => Promise<void>;
  /** Stand-ins of model names: restored to names from the opened documents on recovery, and written to the audit log instead of names. */
  readonly modelTags?: ModelTags;
  /** How often waiting work is looked at again even when nothing happened (aging), in ms. */
  readonly agingTickMs?: number;
}

export interface ActiveRun {
  readonly id: string;
  readonly tenant: string;
  /** The run's priority class as submitted (the demand controller scales for interactive work first). */
  readonly priority?: PriorityClass;
  readonly workflow?: string;
  readonly graph: WorkflowGraph | undefined;
  readonly stages: ReadonlyMap<string, Stage>;
}

/** A stage the loop has placed and not yet seen end. */
export interface RunningStage {
  readonly runId: string;
  readonly stageId: string;
  readonly tenant: string;
  readonly gpus: readonly string[];
  readonly placedAtMs: number;
  attemptId: string | null;
  handle: RunningAttempt | null;
  /** Why the loop stopped it, if it did. */
  stop: "cancel" | "preempt" | "shutdown" | null;
  /** For a preempted stage: settles once its failed attempt is in the store. */
  settling?: Promise<void>;
  settled?: () => void;
  simulated: boolean;
  /** The attempt's trace, once it is placed, when tracing is on. */
  trace?: AttemptTrace;
}
