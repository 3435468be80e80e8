/**
 * The workflow graph model every importer produces and the scheduler consumes.
 * A native workflow maps one stage per declared stage; a ComfyUI prompt keeps its nodes
 * (with typed links) so the cost model can group them into GPU-affine stages.
 */
import type { PriorityClass } from "../config/schema.ts";
import type { RetryPolicy } from "./retry.ts";

export type { RetryPolicy };

export type WorkflowFormat = "native" | "comfyui";

export interface StageResources {
  /** GPUs the stage needs at once, all on one node (0 for CPU-only stages). */
  readonly gpus: number;
  /** VRAM the stage needs on each of its GPUs, in MiB. */
  readonly vramMiB: number;
  /** Model the stage loads onto its GPUs; stages with the same model can reuse a resident copy. */
  readonly model?: string;
}

export interface StageRun {
  /** argv of the program; run without a shell. */
  readonly command: readonly string[];
  /** Container image for executors that run stages in containers. */
  readonly image?: string;
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutSeconds?: number;
  /** Set when the stage needs the network; stages are offline otherwise. */
  readonly network?: "egress";
}

/** An input of a ComfyUI node that comes from another node's output. */
export interface ComfyLink {
  readonly input: string;
  readonly from: string;
  readonly output: number;
}

export interface ComfyNode {
  readonly id: string;
  readonly classType: string;
  readonly title?: string;
  /** Literal inputs (strings, numbers, booleans, arrays that are not links). */
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly links: readonly ComfyLink[];
}

export interface Stage {
  readonly id: string;
  /** Stages that must succeed before this one starts; their outputs are its inputs. */
  readonly needs: readonly string[];
  readonly resources: StageResources;
  /** What to run; absent for stages only a simulated or ComfyUI executor can run. */
  readonly run?: StageRun;
  readonly priority?: PriorityClass;
  /** Expected seconds of work and of model loading, declared or estimated. */
  readonly estimate?: { readonly durationS: number; readonly modelLoadS: number };
  /** ComfyUI node ids this stage executes (ComfyUI workflows only). */
  readonly comfyNodes?: readonly string[];
  /**
   * How the stage is tried again after a failed attempt.
   * @default DEFAULT_RETRY: 3 attempts, 10 s backoff doubling each time, no non-retryable exit codes
   */
  readonly retry?: RetryPolicy;
}

export interface WorkflowGraph {
  readonly name: string;
  readonly format: WorkflowFormat;
  readonly priority?: PriorityClass;
  /** Native workflows: the declared stages. ComfyUI: one stage per node until segmented. */
  readonly stages: readonly Stage[];
  /** ComfyUI workflows only: the nodes as imported. */
  readonly comfyNodes?: readonly ComfyNode[];
}

/** Caps that keep a hostile or broken document from exhausting the agent. */
export const GRAPH_LIMITS = {
  maxStages: 10_000,
  maxNeedsPerStage: 1_000,
  maxIdLength: 128,
  maxDocumentBytes: 4 * 1024 * 1024,
} as const;
