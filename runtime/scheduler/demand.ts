/**
 * A pool's demand: how many workers (GPU nodes) the queued work needs, and which idle workers may go.
 *
 * Pure: no I/O and no clock. The caller passes the time (`nowS`, seconds on any monotonic scale) and carries
 * the returned `state` into the next call. The simulator's elastic pools and the control plane's demand
 * controller call this same function, so what the benchmark measures is what the platform runs.
 *
 * Rules:
 * - Ready stages that cannot be placed now are packed onto free GPUs first (workers that are up or starting,
 *   not draining), then onto new workers (first-fit decreasing by GPUs; a stage's GPUs are all on one worker).
 *   A stage that needs more VRAM than one GPU of the pool has, or more GPUs than a worker has, can never run
 *   here: it is reported as unplaceable and never scaled for.
 * - Interactive demand scales first: it is packed first, it gets new workers at once, and when `maxWorkers`
 *   caps the pool it is served before batch. Batch demand asks for new workers only once it has waited
 *   `batchScaleUpDelayS`: a batch stage usually finds a GPU freed by running work within seconds, and a node
 *   costs minutes to provision and at least a billing period to pay for, so scaling for every momentary batch
 *   backlog buys nodes that arrive after the work found room. Interactive work has a person waiting.
 * - Scale-up is immediate. Scale-down happens only after the pool has had surplus workers continuously for
 *   `scaleDownCooldownS`, never below `minWorkers`, and drains only idle workers (no running stage), the
 *   longest idle first, so a worker goes away at a stage boundary and no stage is interrupted.
 * - Never above `maxWorkers` (workers above it that are idle are drained at once; busy ones finish first).
 */
import type { PriorityClass } from "../config/schema.ts";

export interface DemandPool {
  readonly gpusPerWorker: number;
  /** VRAM of each GPU of a worker, in MiB. */
  readonly vramMiBPerGpu: number;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  /** Seconds of continuous surplus before idle workers are drained. */
  readonly scaleDownCooldownS: number;
  /** Seconds a batch stage waits before it may ask for a new worker (default DEFAULT_BATCH_SCALE_UP_DELAY_S). */
  readonly batchScaleUpDelayS?: number;
}

export interface DemandWorker {
  readonly id: string;
  readonly gpusBusy: number;
  readonly gpusFree: number;
  /** Takes no new stages; it exits once its running stages finish. */
  readonly draining: boolean;
  /** Asked for but not up yet (node provisioning, pod start): its GPUs count as free capacity to come. */
  readonly starting: boolean;
  /** Since when (nowS scale) it has run no stage; null while it runs one. */
  readonly idleSinceS: number | null;
}

export interface PendingStage {
  readonly id: string;
  /** GPUs needed at once on one worker; 0 for a CPU-only stage (it needs a worker, not a GPU). */
  readonly gpus: number;
  /** VRAM needed on each of its GPUs, in MiB. */
  readonly vramMiB: number;
  readonly priority: PriorityClass;
  /** Since when (nowS scale) it has been ready and unplaced. */
  readonly readySinceS: number;
}

/** Carried between calls: since when the pool has had surplus workers (null: none now). */
export interface DemandState {
  readonly surplusSinceS: number | null;
}

export interface DemandInput {
  readonly pool: DemandPool;
  readonly workers: readonly DemandWorker[];
  readonly pending: readonly PendingStage[];
  readonly nowS: number;
  readonly state?: DemandState;
}

export interface Unplaceable {
  readonly stageId: string;
  readonly reason: string;
}

export interface DemandResult {
  /** Workers the pool should run (up, starting and staying), within [minWorkers, maxWorkers]. */
  readonly desired: number;
  /** Workers up or starting that are not draining. */
  readonly current: number;
  readonly breakdown: {
    /** New workers that interactive demand needs (after free capacity), before the max cap. */
    readonly interactiveWorkers: number;
    /** New workers that batch demand needs (after free capacity and interactive's new workers), before the cap. */
    readonly batchWorkers: number;
    /** Batch stages not yet old enough to ask for a worker. */
    readonly batchDeferred: number;
    /** Idle workers beyond what the pool needs now (drained once the cooldown has passed). */
    readonly surplus: number;
  };
  readonly reasons: readonly string[];
  /** Idle workers to drain now (never one running a stage). */
  readonly drain: readonly string[];
  readonly unplaceable: readonly Unplaceable[];
  readonly state: DemandState;
}

export const DEFAULT_BATCH_SCALE_UP_DELAY_S = 30;

/** A bin stages pack into: an existing worker's free GPUs or a new worker. */
interface Bin {
  readonly workerId: string | null;
  free: number;
  used: boolean;
}

export function computeDemand(input: DemandInput): DemandResult {
  const { pool, nowS } = input;
  validatePool(pool);
  const batchDelay = pool.batchScaleUpDelayS ?? DEFAULT_BATCH_SCALE_UP_DELAY_S;
  const reasons: string[] = [];
  const unplaceable: Unplaceable[] = [];
  const interactive: PendingStage[] = [];
  const batch: PendingStage[] = [];
  for (const stage of input.pending) {
    const why = whyUnplaceable(pool, stage);
    if (why !== null) unplaceable.push({ stageId: stage.id, reason: why });
    else if (stage.priority === "interactive") interactive.push(stage);
    else batch.push(stage);
  }

  const live = input.workers.filter((w) => !w.draining);
  const bins = existingBins(live);
  const interactiveWorkers = pack(interactive, bins, pool.gpusPerWorker, true);
  // Young batch stages still take free GPUs (they keep an idle worker from being drained) but open no worker.
  const ripe = batch.filter((s) => nowS - s.readySinceS >= batchDelay);
  const batchDeferred = batch.length - ripe.length;
  const young = batch.filter((s) => nowS - s.readySinceS < batchDelay);
  const batchWorkers = pack(ripe, bins, pool.gpusPerWorker, true);
  pack(young, bins, pool.gpusPerWorker, false);

  const current = live.length;
  const cappedUp = Math.min(pool.maxWorkers, current + interactiveWorkers + batchWorkers);
  if (interactiveWorkers > 0) reasons.push(`${interactive.length} interactive stage(s) waiting need ${interactiveWorkers} new worker(s)`);
  if (batchWorkers > 0) reasons.push(`${ripe.length} batch stage(s) waiting over ${batchDelay}s need ${batchWorkers} new worker(s)`);
  if (batchDeferred > 0) reasons.push(`${batchDeferred} batch stage(s) wait up to ${batchDelay}s for freed GPUs before asking for a worker`);
  if (current + interactiveWorkers > pool.maxWorkers) reasons.push(`capped at maxWorkers ${pool.maxWorkers}: interactive demand alone needs ${current + interactiveWorkers}`);
  else if (current + interactiveWorkers + batchWorkers > pool.maxWorkers) reasons.push(`capped at maxWorkers ${pool.maxWorkers}: batch gets what interactive leaves`);
  for (const u of unplaceable) reasons.push(`stage ${u.stageId} is unplaceable: ${u.reason}`);

  // Surplus: idle workers (up, not starting) that no waiting stage was packed onto, beyond minWorkers.
  const usedIds = new Set(bins.filter((b) => b.used && b.workerId !== null).map((b) => b.workerId!));
  const idle = live
    .filter((w) => !w.starting && w.gpusBusy === 0 && w.idleSinceS !== null && !usedIds.has(w.id))
    .sort((a, b) => a.idleSinceS! - b.idleSinceS! || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const wantsMore = cappedUp > current;
  const overMax = Math.max(0, current - pool.maxWorkers);
  const surplus = wantsMore ? 0 : Math.min(idle.length, Math.max(0, current - pool.minWorkers));

  let state: DemandState = { surplusSinceS: surplus > 0 ? (input.state?.surplusSinceS ?? nowS) : null };
  let drainCount = Math.min(idle.length, overMax);
  if (overMax > 0) reasons.push(`${current} workers exceed maxWorkers ${pool.maxWorkers}`);
  if (surplus > 0) {
    const since = state.surplusSinceS!;
    if (nowS - since >= pool.scaleDownCooldownS) {
      drainCount = Math.max(drainCount, surplus);
      reasons.push(`${surplus} idle worker(s) surplus for ${round1(nowS - since)}s (cooldown ${pool.scaleDownCooldownS}s): drain`);
      // The surplus is being removed; a new surplus starts its own cooldown.
      state = { surplusSinceS: null };
    } else {
      reasons.push(`${surplus} idle worker(s) surplus for ${round1(nowS - since)}s; drained after the ${pool.scaleDownCooldownS}s cooldown`);
    }
  }
  const drain = idle.slice(0, drainCount).map((w) => w.id);
  const desired = Math.max(pool.minWorkers, Math.min(pool.maxWorkers, wantsMore ? cappedUp : current - drain.length));
  if (desired > current && !wantsMore) reasons.push(`below minWorkers ${pool.minWorkers}`);
  return {
    desired,
    current,
    breakdown: { interactiveWorkers, batchWorkers, batchDeferred, surplus },
    reasons,
    drain,
    unplaceable,
    state,
  };
}

function validatePool(pool: DemandPool): void {
  const check = (field: string, ok: boolean, fix: string): void => {
    if (!ok) throw new Error(`demand: pool.${field} ${fix}`);
  };
  check("gpusPerWorker", Number.isInteger(pool.gpusPerWorker) && pool.gpusPerWorker >= 1, `must be an integer ≥ 1 (got ${pool.gpusPerWorker})`);
  check("vramMiBPerGpu", pool.vramMiBPerGpu > 0, `must be > 0 MiB (got ${pool.vramMiBPerGpu})`);
  check("minWorkers", Number.isInteger(pool.minWorkers) && pool.minWorkers >= 0, `must be an integer ≥ 0 (got ${pool.minWorkers})`);
  check("maxWorkers", Number.isInteger(pool.maxWorkers) && pool.maxWorkers >= pool.minWorkers, `must be an integer ≥ minWorkers ${pool.minWorkers} (got ${pool.maxWorkers})`);
  check("scaleDownCooldownS", pool.scaleDownCooldownS >= 0, `must be ≥ 0 seconds (got ${pool.scaleDownCooldownS})`);
}

function whyUnplaceable(pool: DemandPool, stage: PendingStage): string | null {
  if (stage.gpus > pool.gpusPerWorker) return `needs ${stage.gpus} GPUs on one worker; a worker of this pool has ${pool.gpusPerWorker}`;
  if (stage.gpus > 0 && stage.vramMiB > pool.vramMiBPerGpu) return `needs ${stage.vramMiB} MiB per GPU; a GPU of this pool has ${pool.vramMiBPerGpu} MiB`;
  return null;
}

/**
 * Free capacity in packing order: workers with running stages first, then starting workers, then idle ones
 * most recently idle first, so the longest-idle workers stay unused and are the ones drained.
 */
function existingBins(live: readonly DemandWorker[]): Bin[] {
  const rank = (w: DemandWorker): number => (w.gpusBusy > 0 || w.idleSinceS === null ? 0 : w.starting ? 1 : 2);
  return [...live]
    .sort((a, b) => rank(a) - rank(b) || (rank(a) === 2 ? b.idleSinceS! - a.idleSinceS! : 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((w) => ({ workerId: w.id, free: Math.max(0, w.gpusFree), used: false }));
}

/**
 * First-fit decreasing by GPUs. Adds new-worker bins when `mayOpen`; returns how many it opened.
 * A stage with 0 GPUs needs any worker: the first bin, or a new one when the pool has none.
 */
function pack(stages: readonly PendingStage[], bins: Bin[], gpusPerWorker: number, mayOpen: boolean): number {
  const sorted = [...stages].sort((a, b) => b.gpus - a.gpus);
  let opened = 0;
  for (const stage of sorted) {
    const bin = bins.find((b) => b.free >= stage.gpus);
    if (bin !== undefined) {
      bin.free -= stage.gpus;
      bin.used = true;
    } else if (mayOpen) {
      bins.push({ workerId: null, free: gpusPerWorker - stage.gpus, used: true });
      opened += 1;
    }
  }
  return opened;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
