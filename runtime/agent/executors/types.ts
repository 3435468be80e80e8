/**
 * Executors run one attempt of a stage. The agent loop starts an attempt on the GPUs the scheduler
 * chose, waits for `done`, then (on success) has the outputs committed before it marks the stage
 * succeeded.
 */
import type { ComfyNode, Stage } from "../../graph/model.ts";

export interface AttemptGpu {
  readonly id: string;
  /** Real GPUs have a UUID; simulated ones have none and are passed to the stage by id; a ComfyUI server container's (comfyui.image) has none and is not simulated. */
  readonly uuid: string | null;
  readonly simulated: boolean;
  /** Its index on its machine (CUDA's), when the one starting the attempt knows it: a worker's ComfyUI servers are found by it. */
  readonly index?: number;
}

/** What an attempt finds in `$GPUFABRIC_INPUT_DIR`: the outputs of a stage it needs, or the run's inputs. */
export type AttemptInput = NeededStageInput | RunInputsInput;

/** The committed outputs of a stage this one needs: placed in `inputs/<stageId>/`. */
export interface NeededStageInput {
  readonly stageId: string;
  readonly artifacts: ReadonlyArray<{ readonly name: string; readonly path: string }>;
}

/** The run's `inputs` object (opened from its sealed field), in the JSON file at `runInputs`: placed as `inputs/run-inputs.json`. */
export interface RunInputsInput {
  readonly runInputs: string;
}

/** A W3C trace context (https://www.w3.org/TR/trace-context/): the attempt's execution span, for the work it starts. */
export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate?: string;
}

export interface AttemptSpec {
  readonly attemptId: string;
  readonly runId: string;
  /** The run's tenant: a sandboxed stage runs as the tenant's own uid. */
  readonly tenant?: string;
  readonly stageId: string;
  /** 1 for the first attempt; each attempt gets its own fresh workspace. */
  readonly number: number;
  readonly stage: Stage;
  readonly gpus: readonly AttemptGpu[];
  readonly inputs: readonly AttemptInput[];
  /** The run's inputs object itself, for an executor that hands it to another node (cluster mode) instead of a file. */
  readonly runInputsValue?: Readonly<Record<string, unknown>>;
  /** A ComfyUI workflow's stage: every node of the prompt (the stage's own are `stage.comfyNodes`). */
  readonly comfy?: { readonly nodes: readonly ComfyNode[] };
  /** The attempt's trace context when tracing is on: a stage process gets it as TRACEPARENT, a ComfyUI server as `traceparent`. */
  readonly trace?: TraceContext;
}

/**
 * Why an attempt ended. `completed`: exit code 0. `exit-code`: another exit code. `signal`: killed by a
 * signal the agent did not send. `timeout`/`cancelled`: stopped by the agent. `setup-failed`: the
 * workspace, inputs or program could not be set up, so nothing ran. `interrupted`: the node running it
 * was lost (cluster mode): not the stage's fault, it runs again elsewhere.
 */
export type AttemptEndReason = "completed" | "exit-code" | "signal" | "timeout" | "cancelled" | "setup-failed" | "interrupted";

export interface AttemptOutcome {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly reason: AttemptEndReason;
  /** One line for people: what happened, and what to do about it when it is a problem. */
  readonly message: string;
  readonly peakVramMiB?: number;
  /** True when no real work ran (a simulated executor); every status built on it says so. */
  readonly simulated: boolean;
  /** Where stdout and stderr were kept; `failure` when writing them failed (the stage ran on regardless). */
  readonly logs?: { readonly stdout: string; readonly stderr: string; readonly truncated: boolean; readonly failure?: string };
  /** A ComfyUI attempt: the models its server holds now (loaded since its last restart), for the scheduler's residency. */
  readonly residentModels?: readonly string[];
}

export interface CommittedArtifact {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly path: string;
}

export interface RunningAttempt {
  readonly attemptId: string;
  /** Process id (also the process group id) of a process attempt; null when nothing was spawned. */
  readonly pid: number | null;
  readonly workspace: string | null;
  readonly done: Promise<AttemptOutcome>;
  /** Stops the attempt (the whole process group); `done` then resolves with reason `cancelled`. */
  cancel(): void;
  /**
   * Moves the outputs into the run's artifact folder, durably, and describes them. Only after a
   * `completed` outcome; throws a ValidationError naming each output it refuses.
   */
  commitOutputs(): Promise<CommittedArtifact[]>;
}

export interface Executor {
  readonly kind: "process" | "simulated" | "comfyui";
  /** Resolves once the attempt is under way (or has ended at setup); never rejects for a stage's own faults. */
  start(attempt: AttemptSpec): Promise<RunningAttempt>;
}
