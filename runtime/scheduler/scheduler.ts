/**
 * The workflow-native scheduler: pure and deterministic (no I/O, no clock of its own: every call
 * takes `now`), shared by the live agent and the simulator. It keeps the ready stages of all runs
 * in per-level, per-tenant queues and the GPUs in availability indexes, so one decision costs a
 * few heap operations and a short bucket scan instead of a pass over every stage and GPU.
 *
 * Its parts: the state and the operations that change it (state.ts), admission of a run
 * (run-builder.ts), one round of decisions with its scratch (round.ts), and the GPU search,
 * evictions and reservations (placement.ts), over the records they share (records.ts).
 */
import { SCHEDULER_DEFAULTS, type SchedulerSettings } from "../config/schema.ts";
import type { GpuSpec } from "./inventory.ts";
import { AVOID_NONE, BACKOFF, DONE, LEVELS, LEVEL_NAMES, READY, WAITING, quotaReason, stageOf } from "./records.ts";
import { Round } from "./round.ts";
import { RunBuilder } from "./run-builder.ts";
import { SchedulerState, type TenantShare } from "./state.ts";
import type { Decision, RunSpec, SubmitResult, WaitReason } from "./types.ts";

export type { TenantShare };

export interface SchedulerOptions {
  readonly gpus: readonly GpuSpec[];
  /** Known tenants; when given, runs of other tenants are rejected. */
  readonly tenants?: readonly TenantShare[];
  readonly settings?: Partial<SchedulerSettings>;
  /** Planning ahead for runs that ask for it. */
  readonly plan?: { readonly budget?: number; readonly seed?: number };
  /** Blocked stages examined per round before giving up on backfilling. */
  readonly backfillWindow?: number;
  /** Failed attempts after which a stage (and its run) fails for good. */
  readonly maxAttempts?: number;
}

/** The defaults of runtime/config, under the name this module has always exported. */
export const DEFAULT_SETTINGS: SchedulerSettings = SCHEDULER_DEFAULTS;

export class Scheduler {
  readonly settings: SchedulerSettings;
  private readonly state: SchedulerState;
  private readonly builder: RunBuilder;
  private readonly round: Round;

  constructor(options: SchedulerOptions) {
    if (options.gpus.length === 0) throw new Error("a scheduler needs at least one GPU");
    this.settings = { ...DEFAULT_SETTINGS, ...options.settings };
    this.state = new SchedulerState(options.gpus, this.settings, options.tenants, options.maxAttempts ?? 3);
    this.builder = new RunBuilder(this.state, options.plan ?? {});
    this.round = new Round(this.state, options.backfillWindow ?? 256);
  }

  get gpuCount(): number {
    return this.state.index.gpus.length;
  }

  get placements(): number {
    return this.state.placementsMade;
  }

  gpuId(i: number): string {
    return this.state.index.gpus[i]!.spec.id;
  }

  /** Models resident on a GPU, least recently used first. */
  residentModels(gpu: number): string[] {
    return [...this.state.index.gpus[gpu]!.resident.values()].sort((a, b) => a.lastUse - b.lastUse).map((m) => m.name);
  }

  /**
   * What a GPU's model server says it holds (a ComfyUI server after each prompt): idle resident models
   * it no longer holds (it restarted, or unloaded everything after running out of memory) are forgotten,
   * so that affinity and eviction decisions follow the real server. Models in use stay; none is added.
   * Returns the models forgotten.
   */
  forgetResidentExcept(gpuId: string, models: readonly string[]): string[] {
    const g = this.state.index.gpus.find((x) => x.spec.id === gpuId);
    if (g === undefined) return [];
    const keep = new Set(models);
    const gone = g.residentList.filter((m) => m.inUse === 0 && !keep.has(m.name)).map((m) => m.name);
    if (gone.length === 0) return gone;
    // The GPU changes: reasons worked out before no longer hold.
    this.state.search.invalidate();
    for (const name of gone) this.state.index.evict(g, name);
    this.state.index.rebucket(g);
    return gone;
  }

  tenantUsage(): { name: string; weight: number; heldGpus: number; heldMiB: number }[] {
    return this.state.tenantList.map((t) => ({ name: t.name, weight: t.weight, heldGpus: t.heldGpus, heldMiB: t.heldMiB }));
  }

  /** Accepts a run, or rejects it with the field at fault; a stage no GPU could ever hold is rejected here, never queued. */
  submit(run: RunSpec, now: number): SubmitResult {
    return this.builder.submit(run, now);
  }

  /**
   * Places as many ready stages as fit now; returns the placements, kills and reasons for stages
   * examined but left waiting. A round:
   *  0. Queues again the stages whose backoff after a failed attempt ended by now.
   *  1. Counts itself: a tenant stopped by its quota at a level in an earlier round is looked at again.
   *  2. Lifts by one level the runs whose stages waited agingSeconds at theirs (all their ready stages together).
   *  3. Starts every ready CPU-only stage.
   *  4. Stops there when no GPU is free, unless preemption `kill` may free one.
   *  5. Repeats, up to a window of stages examined that grows with the free GPUs:
   *     a. picks the highest level with a ready stage, the tenant of lowest weighted dominant share
   *        there, and its first stage among the size classes that could get a GPU free now;
   *     b. takes instead a stage of that tenant and level whose model sits on a free GPU, when the
   *        first one would load its model anyway;
   *     c. leaves the stage waiting if it would take its tenant over a quota;
   *     d. searches GPUs for it, kept off the node reserved for a waiting gang and, below the
   *        interactive level, off the GPU sizes kept for a waiting interactive stage; an
   *        interactive stage under `kill` may stop a batch stage to get one;
   *     e. commits the placement (evicting idle models as needed), or leaves the stage waiting with
   *        its reason, and a waiting interactive-level stage reserves GPUs for itself.
   *  6. Puts the stages left waiting back in their queues, in their order.
   */
  schedule(now: number): Decision[] {
    const round = this.round;
    round.number++;
    if (this.state.backoff.size > 0) this.state.releaseBackoffs(now);
    this.state.promoteAged(now);
    const decisions: Decision[] = [];
    round.startCpuStages(now, decisions);
    if (this.state.index.freeSlots === 0 && this.settings.preemption !== "kill") return decisions;
    round.placeGpuStages(now, decisions);
    round.requeueBlocked(now);
    return decisions;
  }

  /**
   * Records the end of a stage's attempt. A success readies its dependents; a failure queues the
   * stage again until maxAttempts, then fails the run; an interruption (its node lost) queues it again
   * without counting. Returns the run's state afterwards.
   *
   * `retry` (failures only), from a caller that applies a retry policy: `final` fails the stage and
   * its run now (a non-retryable failure, or the stage's own attempts used up); `notBefore` keeps the
   * stage out of placement until that time (a backoff), holding no GPU, explained as `backoff`.
   */
  finished(
    runId: string,
    stageId: string,
    now: number,
    outcome: "succeeded" | "failed" | "interrupted",
    retry?: { readonly notBefore?: number; readonly final?: boolean }
  ): "running" | "succeeded" | "failed" {
    return this.state.finished(runId, stageId, now, outcome, retry);
  }

  /**
   * Keeps a ready stage out of placement until `notBefore`, as a backoff (a recovered stage whose last
   * attempt failed before a restart). Returns false when the stage is not ready or the time has passed.
   */
  holdUntil(runId: string, stageId: string, notBefore: number, now: number): boolean {
    const run = this.state.runs.get(runId);
    const s = run === undefined ? undefined : stageOf(run, stageId);
    return s !== undefined && this.state.holdUntil(s, notBefore, now);
  }

  /**
   * Takes a GPU (by index) out of service, as when its node's worker is lost, or puts it back when the
   * worker returns. Nothing is placed on it meanwhile; its running stages still end through finished()
   * (with outcome `interrupted` when they were lost with it: queued again without using up an attempt).
   */
  setOnline(gpu: number, online: boolean): boolean {
    return this.state.setOnline(gpu, online);
  }

  /** Whether a GPU (by index) is in service. */
  isOnline(gpu: number): boolean {
    return !this.state.index.gpus[gpu]!.offline;
  }

  /**
   * Cancels a run: its queued and waiting stages leave the queues and are never placed; a stage of
   * it still running ends through finished() as usual (which then reports the run failed). Returns
   * how many of its stages still run: 0 means the scheduler has forgotten the run (or never knew it).
   */
  cancel(runId: string): number {
    return this.state.cancel(runId);
  }

  /** Why a stage is not running right now (null when it runs or is unknown). */
  explain(runId: string, stageId: string): WaitReason | null {
    const state = this.state;
    const run = state.runs.get(runId);
    const s = run === undefined ? undefined : stageOf(run, stageId);
    if (s === undefined) return null;
    if (s.state === WAITING) return { code: "dependencies", pending: s.parents.filter((p) => p.state !== DONE).map((p) => p.spec.id) };
    if (s.state === BACKOFF) return { code: "backoff", until: s.notBefore };
    if (s.state !== READY) return null;
    const quota = quotaReason(s.run.tenant, s);
    if (quota !== null) return quota;
    if (s.gpuCount > 0 && state.search.findGpus(s, AVOID_NONE, Number.NEGATIVE_INFINITY) === null) return state.search.noFitReason(s);
    if (s.lastWait !== null && s.lastWait.code !== "no-fit" && s.lastWait.code !== "gang") return s.lastWait;
    let ahead = 0;
    for (const t of state.tenantList) for (let level = s.run.level; level < LEVELS; level++) for (const q of t.queues[level]!) ahead += q.size;
    return { code: "priority", ahead: Math.max(0, ahead - 1), level: LEVEL_NAMES[s.run.level]! };
  }
}
