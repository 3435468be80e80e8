/**
 * The policies gpufabric is measured against, behind the same interface:
 * - fifo-job: each workflow goes whole to one GPU (or one node's GPUs for gang stages), first free that fits its largest stage, stages in order;
 * - fifo-stage: stage-level FIFO, memory-aware first fit; no priorities, fairness or affinity;
 * - naive-stage: stage-level round robin with no memory check (overcommits become OOM failures and retries).
 */
import { buildDag, type Dag } from "../scheduler/dag.ts";
import type { GpuSpec } from "../scheduler/inventory.ts";
import type { RunSpec, StageSpec, SubmitResult } from "../scheduler/types.ts";
import type { Dispatch, PolicyContext, PolicyStep, SimPolicy } from "./policy.ts";

interface BaseRun {
  readonly spec: RunSpec;
  readonly dag: Dag;
  readonly pending: number[];
  readonly byId: Map<string, number>;
  done: number;
}

/** What every baseline shares: run bookkeeping, slot tracking and submission checks. */
abstract class BaselinePolicy implements SimPolicy {
  abstract readonly name: string;
  protected readonly gpus: readonly GpuSpec[];
  protected readonly usable: number[];
  protected readonly free: number[];
  protected readonly nodeOf: number[];
  protected readonly nodes: number[][];
  protected readonly runs = new Map<string, BaseRun>();
  protected placed = 0;

  constructor(ctx: PolicyContext) {
    const headroom = ctx.settings.headroomMiB ?? 0;
    this.gpus = ctx.gpus;
    this.usable = ctx.gpus.map((g) => g.memoryMiB - headroom);
    this.free = ctx.gpus.map((g) => g.slots);
    const nodeIndex = new Map<string, number>();
    this.nodes = [];
    this.nodeOf = ctx.gpus.map((g, i) => {
      let n = nodeIndex.get(g.node);
      if (n === undefined) {
        n = this.nodes.length;
        nodeIndex.set(g.node, n);
        this.nodes.push([]);
      }
      this.nodes[n]!.push(i);
      return n;
    });
  }

  get decisionCount(): number {
    return this.placed;
  }

  submit(run: RunSpec, _now: number): SubmitResult {
    const dag = buildDag(run.stages);
    if (Array.isArray(dag)) return { accepted: false, field: dag[0]!.field, message: dag[0]!.message };
    for (const [i, s] of run.stages.entries()) {
      if (s.gpus > 0 && !this.nodes.some((n) => n.filter((g) => this.usable[g]! >= s.vramMiB).length >= s.gpus)) {
        return { accepted: false, stageId: s.id, field: `stages[${i}].resources`, message: `stage '${s.id}' fits no GPU of the pool` };
      }
    }
    const state: BaseRun = { spec: run, dag, pending: dag.parents.map((p) => p.length), byId: new Map(run.stages.map((s, i) => [s.id, i])), done: 0 };
    this.runs.set(run.id, state);
    this.accepted(state);
    return { accepted: true };
  }

  protected abstract accepted(run: BaseRun): void;
  abstract step(now: number): PolicyStep;
  abstract finished(runId: string, stageId: string, now: number, outcome: "succeeded" | "failed"): void;

  /** First node (in inventory order) with `count` free GPUs passing `ok`, or null. */
  protected firstFit(count: number, ok: (g: number) => boolean): number[] | null {
    if (count === 1) {
      for (let g = 0; g < this.gpus.length; g++) if (this.free[g]! > 0 && ok(g)) return [g];
      return null;
    }
    for (const node of this.nodes) {
      const fit = node.filter((g) => this.free[g]! > 0 && ok(g));
      if (fit.length >= count) return fit.slice(0, count);
    }
    return null;
  }

  protected take(gpus: readonly number[]): void {
    for (const g of gpus) this.free[g]!--;
  }

  protected give(gpus: readonly number[]): void {
    for (const g of gpus) this.free[g]!++;
  }

  /** Marks a stage done and returns the indexes of the stages it made ready. */
  protected complete(run: BaseRun, index: number): number[] {
    run.done++;
    const ready: number[] = [];
    for (const c of run.dag.children[index]!) if (--run.pending[c]! === 0) ready.push(c);
    if (run.done === run.spec.stages.length) this.runs.delete(run.spec.id);
    return ready;
  }
}

interface QueuedStage {
  readonly run: BaseRun;
  readonly index: number;
  readonly spec: StageSpec;
}

/** Stage-level FIFO shared by fifo-stage and naive-stage; they differ in how they pick GPUs. */
abstract class StageQueuePolicy extends BaselinePolicy {
  private queue: QueuedStage[] = [];
  private readonly running = new Map<string, readonly number[]>();

  protected accepted(run: BaseRun): void {
    run.pending.forEach((p, i) => {
      if (p === 0) this.queue.push({ run, index: i, spec: run.spec.stages[i]! });
    });
  }

  protected abstract choose(stage: StageSpec): number[] | null;

  step(_now: number): PolicyStep {
    const starts: Dispatch[] = [];
    const left: QueuedStage[] = [];
    for (const q of this.queue) {
      const gpus = q.spec.gpus === 0 ? [] : this.choose(q.spec);
      if (gpus === null) {
        left.push(q);
        continue;
      }
      this.take(gpus);
      this.placed++;
      this.running.set(`${q.run.spec.id}\u0000${q.spec.id}`, gpus);
      starts.push({ runId: q.run.spec.id, stageId: q.spec.id, gpus, evict: [] });
    }
    this.queue = left;
    return { starts, kills: [] };
  }

  finished(runId: string, stageId: string, _now: number, outcome: "succeeded" | "failed"): void {
    const key = `${runId}\u0000${stageId}`;
    const gpus = this.running.get(key);
    const run = this.runs.get(runId);
    if (gpus === undefined || run === undefined) throw new Error(`stage '${stageId}' of run '${runId}' is not running`);
    this.running.delete(key);
    this.give(gpus);
    const index = run.byId.get(stageId)!;
    if (outcome === "failed") {
      this.queue.push({ run, index, spec: run.spec.stages[index]! });
      return;
    }
    for (const c of this.complete(run, index)) this.queue.push({ run, index: c, spec: run.spec.stages[c]! });
  }
}

export class FifoStagePolicy extends StageQueuePolicy {
  readonly name = "fifo-stage";
  protected choose(stage: StageSpec): number[] | null {
    return this.firstFit(stage.gpus, (g) => this.usable[g]! >= stage.vramMiB);
  }
}

export class NaiveStagePolicy extends StageQueuePolicy {
  readonly name = "naive-stage";
  private next = 0;
  protected choose(stage: StageSpec): number[] | null {
    const n = this.gpus.length;
    if (stage.gpus === 1) {
      for (let k = 0; k < n; k++) {
        const g = (this.next + k) % n;
        if (this.free[g]! > 0) {
          this.next = (g + 1) % n;
          return [g];
        }
      }
      return null;
    }
    // Gangs still need one node; round robin over the nodes, memory unchecked.
    for (let k = 0; k < n; k++) {
      const g = (this.next + k) % n;
      const node = this.nodes[this.nodeOf[g]!]!;
      const fit = node.filter((x) => this.free[x]! > 0);
      if (fit.length >= stage.gpus) {
        this.next = (g + 1) % n;
        return fit.slice(0, stage.gpus);
      }
    }
    return null;
  }
}

interface Job {
  readonly run: BaseRun;
  readonly gpus: number;
  readonly vramMiB: number;
  held: number[] | null;
  /** Next position in the run's topological order. */
  cursor: number;
}

export class FifoJobPolicy extends BaselinePolicy {
  readonly name = "fifo-job";
  private readonly queue: Job[] = [];
  private readonly jobs = new Map<string, Job>();
  private readonly next: Dispatch[] = [];

  protected accepted(run: BaseRun): void {
    const stages = run.spec.stages;
    const job: Job = {
      run,
      gpus: stages.reduce((m, s) => Math.max(m, s.gpus), 0),
      vramMiB: stages.reduce((m, s) => Math.max(m, s.vramMiB), 0),
      held: null,
      cursor: 0,
    };
    this.jobs.set(run.spec.id, job);
    this.queue.push(job);
  }

  step(_now: number): PolicyStep {
    const starts: Dispatch[] = this.next.splice(0);
    for (let i = 0; i < this.queue.length; ) {
      const job = this.queue[i]!;
      const gpus = job.gpus === 0 ? [] : this.firstFit(job.gpus, (g) => this.usable[g]! >= job.vramMiB);
      if (gpus === null) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.take(gpus);
      job.held = gpus;
      starts.push(this.dispatchNext(job));
    }
    return { starts, kills: [] };
  }

  private dispatchNext(job: Job): Dispatch {
    const index = job.run.dag.order[job.cursor]!;
    const stage = job.run.spec.stages[index]!;
    this.placed++;
    return { runId: job.run.spec.id, stageId: stage.id, gpus: job.held!.slice(0, stage.gpus), evict: [] };
  }

  finished(runId: string, stageId: string, _now: number, outcome: "succeeded" | "failed"): void {
    const job = this.jobs.get(runId);
    if (job === undefined || job.held === null) throw new Error(`run '${runId}' is not running`);
    if (outcome === "succeeded") {
      this.complete(job.run, job.run.byId.get(stageId)!);
      job.cursor++;
    }
    if (job.cursor < job.run.spec.stages.length) {
      this.next.push(this.dispatchNext(job));
      return;
    }
    this.give(job.held);
    this.jobs.delete(runId);
  }
}

export const BASELINES = {
  "fifo-job": (ctx: PolicyContext) => new FifoJobPolicy(ctx),
  "fifo-stage": (ctx: PolicyContext) => new FifoStagePolicy(ctx),
  "naive-stage": (ctx: PolicyContext) => new NaiveStagePolicy(ctx),
} as const;
