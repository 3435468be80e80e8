/**
 * The scheduler's state and the operations that change it: tenants, runs and their ready stages,
 * the queues and the aging heap, the GPUs with what runs and what stays resident on them, and the
 * counts the rounds read. A round (round.ts) decides; the state commits: every change of a stage's
 * state or level goes through here, and gives the stage a new token so stale queue slots drop out.
 */
import type { SchedulerSettings } from "../config/schema.ts";
import { EntryQueue as Queue } from "./entry-queue.ts";
import { GpuIndex, type GpuState } from "./gpu-state.ts";
import { DueQueue } from "./heap.ts";
import type { GpuSpec } from "./inventory.ts";
import { GpuSearch } from "./placement.ts";
import {
  BACKOFF,
  BATCH,
  DONE,
  FAILED,
  INTERACTIVE,
  LEVELS,
  LEVEL_NAMES,
  NONE,
  READY,
  RUNNING,
  WAITING,
  push,
  removeReady,
  stageOf,
  type AgingEntry,
  type BackoffEntry,
  type CpuEntry,
  type EntryQueue,
  type RunState,
  type StageState,
  type TenantState,
} from "./records.ts";
import type { Decision, Kill, Placement, WaitReason, Waiting } from "./types.ts";

export interface TenantShare {
  readonly name: string;
  readonly weight: number;
  /** GPUs the tenant may hold at once; null or absent: no cap. */
  readonly gpuQuota?: number | null;
  /** VRAM the tenant may hold at once, in MiB; null or absent: no cap. */
  readonly vramQuotaMiB?: number | null;
}

export class SchedulerState {
  readonly settings: SchedulerSettings;
  readonly index: GpuIndex;
  readonly search: GpuSearch;
  readonly tenants = new Map<string, TenantState>();
  readonly tenantList: TenantState[] = [];
  /** Whether tenants were declared: runs of any other tenant are then rejected. */
  readonly closedTenants: boolean;
  readonly runs = new Map<string, RunState>();
  /** When runs are due to be lifted by aging; due times are pushed mostly in order, so a FIFO serves most. */
  readonly aging = new DueQueue<AgingEntry>();
  readonly cpuReady: CpuEntry[] = [];
  /** Stages backing off after a failed attempt, by when they may be queued again. */
  readonly backoff = new DueQueue<BackoffEntry>();
  readonly runningBatch = new Set<StageState>();
  /**
   * Per GPU count k, the most VRAM (MiB) a stage may ask for on each of k GPUs of one node (the
   * k-th largest usable GPU of the best node); a stage of more GPUs than any node has fits nowhere.
   */
  readonly fitMiB: number[] = [0];
  /** Failed attempts after which a stage (and its run) fails for good. */
  readonly maxAttempts: number;
  /** Ready GPU stages per queue level and size class, to keep scarce large GPUs for stages that need them. */
  readonly readyByClass: number[][];
  /** Ready GPU stages per queue level, all tenants. */
  readonly readyAtLevel: number[] = new Array<number>(LEVELS).fill(0);
  placementsMade = 0;

  constructor(gpus: readonly GpuSpec[], settings: SchedulerSettings, tenants: readonly TenantShare[] | undefined, maxAttempts: number) {
    this.settings = settings;
    this.index = new GpuIndex(gpus, settings.headroomMiB);
    this.closedTenants = tenants !== undefined;
    this.maxAttempts = maxAttempts;
    for (const list of this.index.nodeGpus) {
      const usable = list.map((g) => g.usableMiB).sort((a, b) => b - a);
      for (let k = 1; k <= usable.length; k++) this.fitMiB[k] = Math.max(this.fitMiB[k] ?? 0, usable[k - 1]!);
    }
    this.readyByClass = Array.from({ length: LEVELS }, () => new Array<number>(this.index.sizeClasses.length + 1).fill(0));
    this.search = new GpuSearch(this.index, this.readyByClass);
    for (const t of tenants ?? []) this.addTenant(t);
  }

  /** Counts ready 1-GPU stages (gangs wait for whole nodes, which the node counts track). */
  countReady(s: StageState, level: number, delta: number): void {
    const gpus = s.gpuCount;
    if (gpus === 0) return;
    if (gpus === 1) this.readyByClass[level]![s.sizeClass]! += delta;
    s.run.tenant.readyAt[level]! += delta;
    this.readyAtLevel[level]! += delta;
  }

  /** Adds a tenant: declared ones at the start, in their order; others (when tenants are open) at their first run. */
  addTenant(t: TenantShare): TenantState {
    const state: TenantState = {
      index: this.tenantList.length,
      name: t.name,
      weight: t.weight > 0 ? t.weight : 1,
      gpuQuota: t.gpuQuota ?? null,
      vramQuotaMiB: t.vramQuotaMiB ?? null,
      heldGpus: 0,
      heldMiB: 0,
      gpuSeconds: 0,
      queues: Array.from({ length: LEVELS }, (_, level) => Array.from({ length: this.index.sizeClasses.length + 1 }, () => new Queue<StageState>(level === BATCH))),
      modelQueues: Array.from({ length: LEVELS }, () => new Map<string, EntryQueue>()),
      blockedRound: new Array<number>(LEVELS).fill(-1),
      readyAt: new Array<number>(LEVELS).fill(0),
    };
    this.tenants.set(t.name, state);
    this.tenantList.push(state);
    return state;
  }

  /** Makes a stage ready (its parents are done, or its attempt ended and it may try again) and queues it at its run's level. */
  makeReady(s: StageState, now: number): void {
    s.state = READY;
    s.readyAt = now;
    s.lastWait = null;
    if (s.readyPos < 0) {
      s.readyPos = s.run.ready.length;
      s.run.ready.push(s);
      // Set by enqueue below.
      s.run.readyDue.push(Infinity);
    }
    this.countReady(s, s.run.level, 1);
    this.enqueue(s, s.run.level, now);
  }

  /** Queues a ready stage at a level; `due` (when aging lifts it next) carries over when a blocked stage goes back. */
  enqueue(s: StageState, level: number, now: number, due = now + this.settings.agingSeconds): void {
    s.token++;
    // Only ready stages are queued, so the stage has its place in run.ready.
    s.run.readyDue[s.readyPos] = due;
    if (s.gpuCount === 0) {
      this.cpuReady.push({ s, token: s.token });
      return;
    }
    const tenant = s.run.tenant;
    push(tenant.queues[level]![s.queueClass]!, s, due);
    const model = s.model;
    if (model !== undefined && s.gpuCount === 1) {
      let q = tenant.modelQueues[level]!.get(model);
      if (q === undefined) {
        q = new Queue<StageState>(level === BATCH);
        tenant.modelQueues[level]!.set(model, q);
      }
      push(q, s, due);
    }
    const run = s.run;
    if (level < INTERACTIVE && due < run.agingDue) {
      run.agingDue = due;
      this.aging.push({ run, due });
    }
  }

  /**
   * A run whose stage has waited `agingSeconds` at its level is lifted one level, all its ready
   * stages together so the run keeps its own order; batch work reaches the interactive level after
   * two lifts, so nothing starves while interactive work keeps its lead over fresh batch work.
   */
  promoteAged(now: number): void {
    for (;;) {
      const top = this.aging.peek();
      if (top === undefined || top.due > now) return;
      this.aging.pop();
      const run = top.run;
      // An entry superseded by an earlier one, or of a run already at the top, is stale.
      if (top.due !== run.agingDue) continue;
      run.agingDue = Infinity;
      if (run.level >= INTERACTIVE || run.failed) continue;
      const recent = now - run.promotedAt < this.settings.agingSeconds && run.level > run.original;
      let next = Infinity;
      let due = false;
      const ready = run.ready;
      const dues = run.readyDue;
      for (let i = 0; i < dues.length; i++) {
        const d = dues[i]!;
        if (d <= now) {
          due = true;
          // Lifted too recently: the stage stops counting until it is queued again.
          if (recent) dues[i] = Infinity;
        } else if (d < next) next = d;
      }
      if (!due || recent) {
        if (next < Infinity) {
          run.agingDue = next;
          this.aging.push({ run, due: next });
        }
        continue;
      }
      for (let i = 0; i < ready.length; i++) this.countReady(ready[i]!, run.level, -1);
      run.level++;
      run.promotedAt = now;
      for (let i = 0; i < ready.length; i++) {
        this.countReady(ready[i]!, run.level, 1);
        this.enqueue(ready[i]!, run.level, now);
      }
    }
  }

  /** Starts a stage on the GPUs chosen for it (none for a CPU stage): evictions, resident models, slots, the tenant's share; returns the placement with its reasons. */
  commit(s: StageState, gpus: readonly GpuState[], evictions: readonly { gpu: GpuState; model: string }[], now: number, level: number, share: number, candidates: number): Placement {
    const run = s.run;
    const tenant = run.tenant;
    // The GPUs change: no-fit reasons worked out before no longer hold.
    this.search.invalidate();
    const availableMiB = gpus.length === 1 ? [gpus[0]!.availableMiB] : gpus.map((g) => g.availableMiB);
    const evicted = evictions.length === 0 ? NONE : evictions.map((e) => ({ gpu: e.gpu.spec.id, model: e.model, mib: e.gpu.resident.get(e.model)!.mib }));
    for (let i = 0; i < evictions.length; i++) this.index.evict(evictions[i]!.gpu, evictions[i]!.model);
    const model = s.model;
    let residentEverywhere = model !== undefined && gpus.length > 0;
    let locality: "gpu" | "node" | "none" = "none";
    let loads = false;
    const parents = s.parents;
    for (let k = 0; k < gpus.length; k++) {
      const g = gpus[k]!;
      for (let i = 0; i < parents.length; i++) {
        const pgs = parents[i]!.gpus;
        for (let j = 0; j < pgs.length; j++) {
          const pg = pgs[j]!;
          if (pg === g) locality = "gpu";
          else if (pg.node === g.node && locality === "none") locality = "node";
        }
      }
      if (model !== undefined) {
        const m = g.resident.get(model);
        if (m === undefined) {
          residentEverywhere = false;
          loads = true;
          this.index.addResident(g, model, s.modelMiB, now);
        } else {
          if (m.inUse === 0) g.idleResidentMiB -= m.mib;
          m.inUse++;
          m.lastUse = now;
        }
      }
      g.runningMiB += s.vramMiB;
      this.index.takeSlot(g);
      this.index.rebucket(g);
    }
    s.expectedEnd = now + s.durationS + (loads ? s.modelLoadS : 0);
    for (let k = 0; k < gpus.length; k++) gpus[k]!.addEnd(s.expectedEnd);
    tenant.heldGpus += gpus.length;
    tenant.heldMiB += gpus.length * s.vramMiB;
    s.state = RUNNING;
    s.token++;
    s.startedAt = now;
    s.gpus = gpus;
    s.lastWait = null;
    removeReady(s);
    this.countReady(s, run.level, -1);
    if (run.original === BATCH && gpus.length > 0 && this.settings.preemption === "kill") this.runningBatch.add(s);
    this.placementsMade++;
    return {
      kind: "placed",
      runId: run.spec.id,
      stageId: s.spec.id,
      tenant: tenant.name,
      gpuIds: gpus.length === 1 ? gpus[0]!.idList : gpus.map((g) => g.spec.id),
      gpus: gpus.length === 1 ? gpus[0]!.indexList : gpus.map((g) => g.index),
      evict: evictions.length === 0 ? NONE : evictions.map((e) => ({ gpu: e.gpu.index, model: e.model })),
      reason: {
        needMiB: s.vramMiB,
        availableMiB,
        headroomMiB: this.settings.headroomMiB,
        residentModel: residentEverywhere,
        modelLoadS: residentEverywhere ? 0 : model === undefined ? 0 : s.modelLoadS,
        inputLocality: locality,
        evicted,
        level: LEVEL_NAMES[level]!,
        aged: level > run.original,
        tenantShare: share,
        candidates,
      },
    };
  }

  /** Gives back what a stage held (its attempt ended, or it was killed): slots, VRAM, the tenant's share; its model stays resident, idle. */
  release(s: StageState, now: number): void {
    // The GPUs change: no-fit reasons worked out before no longer hold.
    this.search.invalidate();
    const model = s.model;
    const gpus = s.gpus;
    for (let k = 0; k < gpus.length; k++) {
      const g = gpus[k]!;
      g.runningMiB -= s.vramMiB;
      g.removeEnd(s.expectedEnd);
      if (model !== undefined) {
        const m = g.resident.get(model);
        if (m !== undefined && --m.inUse === 0) {
          g.idleResidentMiB += m.mib;
          m.lastUse = now;
        }
      }
      if (g.offline) {
        // Its node is gone: the slot stays out of service, and the model it held went with the node.
        g.offlineSlots++;
        if (model !== undefined) this.index.evict(g, model);
      } else this.index.releaseSlot(g);
      this.index.rebucket(g);
    }
    const tenant = s.run.tenant;
    tenant.heldGpus -= s.gpus.length;
    tenant.heldMiB -= s.gpus.length * s.vramMiB;
    tenant.gpuSeconds += s.gpus.length * (now - s.startedAt);
    if (this.runningBatch.size > 0) this.runningBatch.delete(s);
  }

  /**
   * Records the end of a stage's attempt. A success readies its dependents; a failure queues the
   * stage again until maxAttempts (or, given `retry.final`, at once), then fails the run; given
   * `retry.notBefore` later than now, the stage backs off until then instead of being queued at
   * once. Returns the run's state afterwards.
   */
  finished(
    runId: string,
    stageId: string,
    now: number,
    outcome: "succeeded" | "failed" | "interrupted",
    retry?: { readonly notBefore?: number; readonly final?: boolean }
  ): "running" | "succeeded" | "failed" {
    const run = this.runs.get(runId);
    const s = run === undefined ? undefined : stageOf(run, stageId);
    if (run === undefined || s === undefined || s.state !== RUNNING) throw new Error(`stage '${stageId}' of run '${runId}' is not running`);
    this.release(s, now);
    if (run.failed) {
      s.state = FAILED;
      this.forgetIfIdle(run);
      return "failed";
    }
    if (outcome === "interrupted") {
      // Its node was lost, not the stage's fault: queued again without using up an attempt (as a kill).
      this.makeReady(s, now);
      return "running";
    }
    if (outcome === "failed") {
      s.attempts++;
      if (s.attempts >= this.maxAttempts || retry?.final === true) {
        s.state = FAILED;
        this.abandon(run);
        return "failed";
      }
      const notBefore = retry?.notBefore;
      if (notBefore !== undefined && notBefore > now) this.backOff(s, notBefore);
      else this.makeReady(s, now);
      return "running";
    }
    s.state = DONE;
    run.remaining--;
    const children = s.children;
    const pending = run.pending;
    for (let i = 0; i < children.length; i++) {
      const c = children[i]!;
      if (--pending[c]! === 0) this.makeReady(run.stages[c]!, now);
    }
    if (run.remaining === 0) {
      this.runs.delete(runId);
      return "succeeded";
    }
    return "running";
  }

  /**
   * Cancels a run: its queued and waiting stages leave the queues and are never placed; a stage of
   * it still running ends through finished() as usual (which then reports the run failed). Returns
   * how many of its stages still run: 0 means the scheduler has forgotten the run (or never knew it).
   */
  cancel(runId: string): number {
    const run = this.runs.get(runId);
    if (run === undefined) return 0;
    this.abandon(run);
    let running = 0;
    for (const s of run.stages) if (s.state === RUNNING) running++;
    return running;
  }

  /** Leaves a stage out of the queues until `notBefore` (it holds nothing meanwhile); releaseBackoffs queues it then. */
  backOff(s: StageState, notBefore: number): void {
    s.state = BACKOFF;
    s.notBefore = notBefore;
    s.lastWait = null;
    // A new token makes any queue entry of it stale.
    s.token++;
    this.backoff.push({ s, token: s.token, due: notBefore });
  }

  /**
   * A ready stage that must wait until `notBefore` first (a recovered stage whose last attempt failed
   * before a restart): it leaves the queues and backs off. False when the stage is not ready.
   */
  holdUntil(s: StageState, notBefore: number, now: number): boolean {
    if (s.state !== READY || notBefore <= now) return false;
    this.countReady(s, s.run.level, -1);
    removeReady(s);
    this.backOff(s, notBefore);
    return true;
  }

  /** Queues the stages whose backoff ended by `now`, in the order their waits end. */
  releaseBackoffs(now: number): void {
    for (;;) {
      const top = this.backoff.peek();
      if (top === undefined || top.due > now) return;
      this.backoff.pop();
      // A stage of a run failed or cancelled meanwhile has a new token and another state.
      if (top.token === top.s.token && top.s.state === BACKOFF) this.makeReady(top.s, now);
    }
  }

  /** Fails a run for good: no stage of it is placed again. */
  abandon(run: RunState): void {
    run.failed = true;
    for (const other of run.stages) {
      if (other.state === READY) this.countReady(other, run.level, -1);
      if (other.state === READY || other.state === WAITING || other.state === BACKOFF) {
        other.state = FAILED;
        // A new token makes its queue entries stale: they are dropped, never placed.
        other.token++;
      }
    }
    for (const r of run.ready) r.readyPos = -1;
    run.ready.length = 0;
    run.readyDue.length = 0;
    this.forgetIfIdle(run);
  }

  /** Drops a failed run once none of its stages runs any more. */
  forgetIfIdle(run: RunState): void {
    if (!run.stages.some((s) => s.state === RUNNING)) this.runs.delete(run.spec.id);
  }

  /** Stops the most recently started batch stage on a GPU large enough (policy `kill` only); it is queued again. */
  killFor(s: StageState, now: number, decisions: Decision[]): boolean {
    let victim: StageState | null = null;
    for (const r of this.runningBatch) {
      if (r.gpus.length !== 1 || r.gpus[0]!.usableMiB < s.vramMiB || r.gpus[0]!.offline) continue;
      if (victim === null || r.startedAt > victim.startedAt || (r.startedAt === victim.startedAt && r.run.seq > victim.run.seq)) victim = r;
    }
    if (victim === null) return false;
    const gpus = victim.gpus.map((g) => g.index);
    this.release(victim, now);
    // A kill is not the stage's fault: it is queued again without using up an attempt.
    this.makeReady(victim, now);
    const kill: Kill = { kind: "killed", runId: victim.run.spec.id, stageId: victim.spec.id, gpus, forRunId: s.run.spec.id, forStageId: s.spec.id };
    decisions.push(kill);
    return true;
  }

  /**
   * Takes a GPU out of service (its node's worker was lost) or puts it back. Out of service, its free
   * slots are held and its idle models forgotten; its running stages end through finished() as usual.
   * Returns whether anything changed.
   */
  setOnline(gpu: number, online: boolean): boolean {
    const g = this.index.gpus[gpu];
    if (g === undefined) throw new RangeError(`no GPU ${gpu}`);
    if (g.offline === !online) return false;
    this.search.invalidate();
    if (!online) {
      g.offline = true;
      while (g.freeSlots > 0) {
        this.index.takeSlot(g);
        g.offlineSlots++;
      }
      for (const m of [...g.residentList]) this.index.evict(g, m.name);
    } else {
      g.offline = false;
      for (; g.offlineSlots > 0; g.offlineSlots--) this.index.releaseSlot(g);
    }
    this.index.rebucket(g);
    return true;
  }

  /** Leaves a stage waiting this round, and says why. */
  wait(s: StageState, reason: WaitReason): Waiting {
    s.lastWait = reason;
    return { kind: "waiting", runId: s.run.spec.id, stageId: s.spec.id, reason };
  }
}
