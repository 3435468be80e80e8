/**
 * The scheduler's records of tenants, runs and stages, and the constants they are read with. Shared
 * by the scheduler's state, its rounds and its GPU search; flat fields and small integer codes, as
 * the hot path reads them on every decision.
 */
import type { GpuState } from "./gpu-state.ts";
import type { EntryQueue as Queue } from "./entry-queue.ts";
import type { QueueLevel, RunSpec, StageSpec, WaitReason } from "./types.ts";
// A stage waits for its parents, is ready (queued), runs, is done, or failed for good; or, after a
// failed attempt, backs off: it waits (in no queue, holding no GPU) until its notBefore time.
export const WAITING = 0;
export const READY = 1;
export const RUNNING = 2;
export const DONE = 3;
export const FAILED = 4;
export const BACKOFF = 5;

// Levels: 0 fresh batch, 1 batch lifted once by aging, 2 interactive (and batch lifted twice).
export const BATCH = 0;
export const INTERACTIVE = 2;
export const LEVELS = 3;
export const LEVEL_NAMES: readonly QueueLevel[] = ["batch", "batch-aged", "interactive"];
/** What a GPU search keeps away from: nothing, the node reserved for a gang, or that and the large GPUs reserved for an interactive stage. */
export const AVOID_NONE = 0;
export const AVOID_NODE = 1;
export const AVOID_ALL = 2;

export interface TenantState {
  readonly index: number;
  readonly name: string;
  readonly weight: number;
  readonly gpuQuota: number | null;
  readonly vramQuotaMiB: number | null;
  heldGpus: number;
  heldMiB: number;
  /** GPU-seconds of finished and running stages, for reporting. */
  gpuSeconds: number;
  /**
   * Ready stages per level and queue class (the size class of 1-GPU stages; one more class for
   * gangs), each in dispatch order. Split by class so that a round only looks at stages that could
   * get one of the GPUs free now, instead of popping and pushing back those that could not.
   */
  readonly queues: EntryQueue[][];
  /** The same stages per level and model, to find one that reuses a model resident on a free GPU. */
  readonly modelQueues: Map<string, EntryQueue>[];
  blockedRound: number[];
  /** Ready GPU stages per level: a level with none is not looked at. */
  readonly readyAt: number[];
}

export interface RunState {
  readonly seq: number;
  readonly spec: RunSpec;
  readonly tenant: TenantState;
  readonly stages: StageState[];
  /** Stages by id, for runs too large to search (null: look through `ids`). */
  readonly byId: Map<string, StageState> | null;
  /** Stage ids in stage order, searched for small runs (one array instead of a map per run). */
  readonly ids: readonly string[];
  readonly original: number;
  level: number;
  /** Submission time shifted earlier by the aging steps of its class: the order inside a level. */
  readonly virtualTime: number;
  promotedAt: number;
  /** Due time of the run's entry in the aging heap (Infinity: none): one entry per run, not per stage. */
  agingDue: number;
  /** Ready stages, in no particular order (swap-removed by position). */
  readonly ready: StageState[];
  /**
   * Per ready stage (same positions): when aging lifts the run next, counted from when the stage
   * was queued at its level (Infinity: not counting). Kept beside the list, not on each stage, so
   * the aging scan reads one array of numbers instead of every stage and its boxed number.
   */
  readonly readyDue: number[];
  remaining: number;
  /**
   * Per stage, its parents not done yet. Kept on the run, not on each stage, so finishing a parent
   * touches its children only when the last one finishes.
   */
  readonly pending: number[];
  failed: boolean;
}

export interface StageState {
  readonly index: number;
  readonly run: RunState;
  readonly spec: StageSpec;
  // The spec's fields the hot path reads, copied flat: the specs lie elsewhere in memory, and
  // reaching into one costs a cache miss on every look.
  readonly gpuCount: number;
  readonly vramMiB: number;
  readonly model: string | undefined;
  readonly durationS: number;
  readonly modelLoadS: number;
  readonly modelMiB: number;
  readonly key: number;
  /** Size class of the smallest GPUs that hold it. */
  readonly sizeClass: number;
  /** Its queue within a tenant's level: the size class, or the gang class. */
  readonly queueClass: number;
  parents: readonly StageState[];
  /** Indexes of the stages that need it; their unfinished parents are counted in run.pending. */
  children: readonly number[];
  state: number;
  readyAt: number;
  token: number;
  attempts: number;
  startedAt: number;
  expectedEnd: number;
  gpus: readonly GpuState[];
  lastWait: WaitReason | null;
  /** Its position in run.ready while ready (-1: not there). */
  readyPos: number;
  /** The reason given to stages kept off the node it reserves, made once (a waiting gang reserves every round). */
  reservedFor: WaitReason | null;
  /** While backing off: when it may be queued again. */
  notBefore: number;
}

/** A stage backing off, due to be queued again at `due` (stale once the stage's token moved on). */
export interface BackoffEntry {
  readonly s: StageState;
  readonly token: number;
  readonly due: number;
}

/** A CPU-only stage waiting for the next round (GPU stages wait in queues that hold no entry objects). */
export interface CpuEntry {
  readonly s: StageState;
  readonly token: number;
}

/** Shared empty list for placements that evict nothing (most of them). */
export const NONE: readonly never[] = Object.freeze([]);

export interface AgingEntry {
  readonly run: RunState;
  readonly due: number;
}

export type EntryQueue = Queue<StageState>;
/** Shared empty lists: most stages have no parents or no children, and no GPUs until placed. */
export const NO_STAGES: readonly StageState[] = Object.freeze([]);
export const NO_GPUS: readonly GpuState[] = Object.freeze([]);
export const NO_INDEXES: readonly number[] = Object.freeze([]);

export function stageOf(run: RunState, id: string): StageState | undefined {
  if (run.byId !== null) return run.byId.get(id);
  const i = run.ids.indexOf(id);
  return i < 0 ? undefined : run.stages[i];
}

export function removeReady(s: StageState): void {
  const list = s.run.ready;
  const dues = s.run.readyDue;
  const last = list.pop()!;
  const lastDue = dues.pop()!;
  if (last !== s) {
    list[s.readyPos] = last;
    dues[s.readyPos] = lastDue;
    last.readyPos = s.readyPos;
  }
  s.readyPos = -1;
}

/** Queues a stage with its current token and `due`. */
export function push(q: EntryQueue, s: StageState, due: number): void {
  q.push(s, s.run.virtualTime, s.run.seq, s.key, s.index, s.token, due);
}

/** Why the tenant may not start the stage now: it would go over a quota (null: it may). */
export function quotaReason(t: TenantState, s: StageState): WaitReason | null {
  const gpus = s.gpuCount;
  if (t.gpuQuota !== null && t.heldGpus + gpus > t.gpuQuota) return { code: "quota", resource: "gpus", held: t.heldGpus, requested: gpus, quota: t.gpuQuota };
  const mib = gpus * s.vramMiB;
  if (t.vramQuotaMiB !== null && t.heldMiB + mib > t.vramQuotaMiB) return { code: "quota", resource: "vram", held: t.heldMiB, requested: mib, quota: t.vramQuotaMiB };
  return null;
}

