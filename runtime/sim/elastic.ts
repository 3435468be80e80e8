/**
 * Elastic pools in the simulator: gpufabric's scheduler on a pool whose workers (GPU nodes) come and go as
 * computeDemand (runtime/scheduler/demand.ts, the function the control plane's demand controller calls)
 * asks. A worker asked for comes up after the provisioning delay; an idle surplus worker is drained after
 * the cooldown and goes at once (it runs nothing: demand never drains a busy worker). A node is paid for
 * from the moment it is asked for (starting included) until it goes, so GPU-hours = GPUs × time up, and
 * cost = GPU-hours × price. A fixed pool is the same simulation with min = max workers, all up from the
 * start, so the figures compare like for like.
 *
 * Deterministic for a seed: stage durations are drawn per run at arrival from a seeded generator.
 */
import { computeDemand, type DemandPool, type DemandState, type DemandWorker, type PendingStage } from "../scheduler/demand.ts";
import { parsePoolSpec } from "../scheduler/inventory.ts";
import { deriveSeed, seededRandom } from "../scheduler/prng.ts";
import { Scheduler } from "../scheduler/scheduler.ts";
import { percentile, round } from "./metrics.ts";
import { ARRIVAL, eventQueue, FINISH, trackRun, type RunTrack as BaseRunTrack, type SimEvent } from "./run-track.ts";
import type { Workload } from "./workload.ts";

export interface ElasticPoolSpec {
  /** GPU model and memory of every GPU, e.g. `L40S` with 48 GiB. */
  readonly model: string;
  readonly memoryGiB: number;
  readonly gpusPerWorker: number;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  /** Seconds from asking for a worker to its GPUs taking stages (node provisioning, image pull, worker start). */
  readonly provisionDelayS: number;
  /** Seconds of continuous surplus before idle workers are drained. */
  readonly cooldownS: number;
  readonly pricePerGpuHour: number;
  /** Seconds a batch stage waits for freed GPUs before it asks for a worker (computeDemand's default when absent). */
  readonly batchScaleUpDelayS?: number;
  /** How often the demand controller re-evaluates between events, in seconds (default 10). */
  readonly evaluateEveryS?: number;
}

/** The workload's runs and the horizon the pool is paid for at least (the simulated period). */
export interface ElasticWorkload extends Pick<Workload, "name" | "tenants" | "arrivals" | "noise" | "settings"> {
  readonly horizonS: number;
}

export interface ElasticRow {
  readonly workload: string;
  readonly pool: string;
  readonly min_workers: number;
  readonly max_workers: number;
  readonly gpu_hours: number | null;
  readonly cost: number | null;
  readonly interactive_p50_s: number | null;
  readonly interactive_p99_s: number | null;
  /** Seconds interactive stages waited from ready to placed: nearest-rank p99 and mean. */
  readonly interactive_queue_p99_s: number | null;
  readonly interactive_queue_mean_s: number | null;
  readonly batch_queue_mean_s: number | null;
  readonly batch_makespan_s: number | null;
  readonly runs_completed: number;
  readonly runs_submitted: number;
  readonly peak_workers: number;
  readonly scale_ups: number;
  readonly drains: number;
  /** Stages a scale-down stopped while they ran: always 0, since only idle workers are drained. */
  readonly stages_interrupted: number;
  /** Seconds of simulated time the pool was paid for (the horizon, or later while work or extra nodes remained). */
  readonly billed_s: number | null;
}

export interface ElasticTimelinePoint {
  readonly at: number;
  readonly desired: number;
  readonly up: number;
  readonly starting: number;
}

export interface ElasticResult {
  readonly row: ElasticRow;
  /** Each change of the desired or running worker count. */
  readonly timeline: readonly ElasticTimelinePoint[];
  /** Each completed interactive run: its arrival and its latency (arrival to last stage done), in seconds. */
  readonly interactiveRuns: readonly { readonly id: string; readonly at: number; readonly latencyS: number }[];
  /** Seconds each interactive GPU stage waited from ready to placed. */
  readonly interactiveQueueS: readonly number[];
}

type WorkerPhase = "off" | "starting" | "up";

interface SimWorker {
  readonly id: string;
  readonly gpus: readonly number[];
  phase: WorkerPhase;
  busy: number;
  idleSince: number | null;
  /** Bumped when the worker goes, so a stale node-up event is ignored. */
  generation: number;
}

interface RunTrack extends BaseRunTrack {
  /** When each stage became ready (all its parents done), for its queueing time. */
  readonly readyAt: Float64Array;
}

const NODE_UP = 2;
const EVALUATE = 3;

interface ElasticEvent extends SimEvent {
  /** NODE_UP: the worker's generation when it was asked for (a stale one is ignored). */
  readonly gen: number;
}

export function validateElasticPool(pool: ElasticPoolSpec): void {
  const bad = (field: string, message: string): never => {
    throw new Error(`elastic pool: ${field} ${message}`);
  };
  if (!Number.isInteger(pool.gpusPerWorker) || pool.gpusPerWorker < 1) bad("gpusPerWorker", `must be a whole number ≥ 1 (got ${pool.gpusPerWorker})`);
  if (!Number.isInteger(pool.minWorkers) || pool.minWorkers < 0) bad("minWorkers", `must be a whole number ≥ 0 (got ${pool.minWorkers})`);
  if (!Number.isInteger(pool.maxWorkers) || pool.maxWorkers < Math.max(1, pool.minWorkers)) bad("maxWorkers", `must be a whole number ≥ 1 and ≥ minWorkers (got ${pool.maxWorkers})`);
  if (!(pool.provisionDelayS >= 0)) bad("provisionDelayS", `must be ≥ 0 seconds (got ${pool.provisionDelayS})`);
  if (!(pool.cooldownS >= 0)) bad("cooldownS", `must be ≥ 0 seconds (got ${pool.cooldownS})`);
  if (!(pool.pricePerGpuHour >= 0)) bad("pricePerGpuHour", `must be ≥ 0 (got ${pool.pricePerGpuHour})`);
}

/** The same pool with a fixed number of workers, all up from the start. */
export function fixedPool(pool: ElasticPoolSpec, workers: number): ElasticPoolSpec {
  return { ...pool, minWorkers: workers, maxWorkers: workers };
}

export function simulateElastic(workload: ElasticWorkload, pool: ElasticPoolSpec, options: { readonly seed: number; readonly label?: string }): ElasticResult {
  validateElasticPool(pool);
  const sim = new ElasticSim(workload, pool, options.seed);
  const billed = sim.run();
  return sim.result(billed, options.label ?? (pool.minWorkers === pool.maxWorkers ? `fixed-${pool.maxWorkers}` : `elastic-${pool.minWorkers}-${pool.maxWorkers}`));
}

const key = (runId: string, stageId: string) => `${runId}\0${stageId}`;
const mean = (v: readonly number[]) => (v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length);

/** One simulation's state: the event loop, the scheduler on every GPU the pool may have, and the workers. */
class ElasticSim {
  private readonly random: () => number;
  private readonly gpuSpecs: ReturnType<typeof parsePoolSpec>;
  private readonly scheduler: Scheduler;
  private readonly gpuWorker: Int32Array;
  private readonly workers: SimWorker[];
  private readonly demandPool: DemandPool;
  private readonly events = eventQueue<ElasticEvent>();
  private seq = 0;
  private now = 0;
  private gpuSeconds = 0;
  private paidGpus = 0;
  private lastQuiet = 0;
  private peakWorkers = 0;
  private scaleUps = 0;
  private drains = 0;
  private completed = 0;
  private batchMakespan: number | null = null;
  private demandState: DemandState = { surplusSinceS: null };
  private readonly runs = new Map<string, RunTrack>();
  /** Ready GPU stages not placed yet, by key(runId, stageId). */
  private readonly ready = new Map<string, { run: RunTrack; index: number }>();
  private readonly finishing: { run: RunTrack; index: number; gpus: readonly number[] }[] = [];
  private readonly interactiveLatency: number[] = [];
  private readonly interactiveQueue: number[] = [];
  private readonly batchQueue: number[] = [];
  private readonly timeline: ElasticTimelinePoint[] = [];
  private readonly interactiveRuns: { id: string; at: number; latencyS: number }[] = [];

  constructor(
    private readonly workload: ElasticWorkload,
    private readonly pool: ElasticPoolSpec,
    seed: number
  ) {
    this.random = seededRandom(deriveSeed(seed, `durations:${workload.name}`));
    // The scheduler knows every GPU the pool may ever have; those of workers not up are out of service.
    this.gpuSpecs = parsePoolSpec(`${pool.maxWorkers}x${pool.gpusPerWorker}x${pool.model}-${pool.memoryGiB}`);
    this.scheduler = new Scheduler({ gpus: this.gpuSpecs, tenants: workload.tenants, settings: workload.settings ?? {} });
    this.gpuWorker = new Int32Array(this.gpuSpecs.length);
    this.workers = Array.from({ length: pool.maxWorkers }, (_, k) => {
      const gpus = Array.from({ length: pool.gpusPerWorker }, (_, j) => k * pool.gpusPerWorker + j);
      for (const g of gpus) this.gpuWorker[g] = k;
      return { id: this.gpuSpecs[k * pool.gpusPerWorker]!.node, gpus, phase: "off" as WorkerPhase, busy: 0, idleSince: null, generation: 0 };
    });
    this.demandPool = {
      gpusPerWorker: pool.gpusPerWorker,
      vramMiBPerGpu: this.gpuSpecs[0]!.memoryMiB - (workload.settings?.headroomMiB ?? 0),
      minWorkers: pool.minWorkers,
      maxWorkers: pool.maxWorkers,
      scaleDownCooldownS: pool.cooldownS,
      ...(pool.batchScaleUpDelayS !== undefined ? { batchScaleUpDelayS: pool.batchScaleUpDelayS } : {}),
    };
    workload.arrivals.forEach((a, i) => this.push(a.at, ARRIVAL, i));
    // Minimum workers are up from the start: a fixed pool is all up, an elastic one keeps its warm floor.
    for (const [k, w] of this.workers.entries()) {
      if (k < pool.minWorkers) {
        w.phase = "up";
        w.idleSince = 0;
        this.paidGpus += pool.gpusPerWorker;
      } else for (const g of w.gpus) this.scheduler.setOnline(g, false);
    }
  }

  /** Runs every event; returns the seconds the pool is paid for (the horizon, or until it went quiet after it). */
  run(): number {
    const evaluateEvery = this.pool.evaluateEveryS ?? 10;
    let evaluatePending = false;
    while (this.events.size > 0) {
      const t = this.events.peek()!.time;
      this.advance(t);
      while (this.events.size > 0 && this.events.peek()!.time === t) {
        const e = this.events.pop()!;
        if (e.kind === ARRIVAL) this.arrive(e.ref);
        else if (e.kind === FINISH) this.finish(e.ref);
        else if (e.kind === NODE_UP) this.nodeUp(e.ref, e.gen);
        else evaluatePending = false;
      }
      this.place();
      const busy = this.evaluate();
      // Freshly up workers take stages at once; then the controller looks again on its period while anything can change.
      this.place();
      if (busy && !evaluatePending) {
        this.push(this.now + evaluateEvery, EVALUATE, 0);
        evaluatePending = true;
      }
      if (!busy) this.lastQuiet = this.now;
    }
    const billed = Math.max(this.workload.horizonS, this.lastQuiet);
    this.advance(billed);
    return billed;
  }

  result(billed: number, label: string): ElasticResult {
    const gpuHours = this.gpuSeconds / 3600;
    const row: ElasticRow = {
      workload: this.workload.name,
      pool: label,
      min_workers: this.pool.minWorkers,
      max_workers: this.pool.maxWorkers,
      gpu_hours: round(gpuHours, 2),
      cost: round(gpuHours * this.pool.pricePerGpuHour, 2),
      interactive_p50_s: round(percentile(this.interactiveLatency, 50)),
      interactive_p99_s: round(percentile(this.interactiveLatency, 99)),
      interactive_queue_p99_s: round(percentile(this.interactiveQueue, 99)),
      interactive_queue_mean_s: round(mean(this.interactiveQueue)),
      batch_queue_mean_s: round(mean(this.batchQueue)),
      batch_makespan_s: round(this.batchMakespan),
      runs_completed: this.completed,
      runs_submitted: this.workload.arrivals.length,
      peak_workers: this.peakWorkers,
      scale_ups: this.scaleUps,
      drains: this.drains,
      stages_interrupted: 0,
      billed_s: round(billed),
    };
    return { row, timeline: this.timeline, interactiveRuns: this.interactiveRuns, interactiveQueueS: this.interactiveQueue };
  }

  private push(time: number, kind: number, ref: number, gen = 0): void {
    this.events.push({ time, seq: this.seq++, kind, ref, gen });
  }

  private advance(to: number): void {
    if (to > this.now) this.gpuSeconds += this.paidGpus * (to - this.now);
    this.now = to;
  }

  private markReady(run: RunTrack, index: number): void {
    run.readyAt[index] = this.now;
    if (run.spec.stages[index]!.gpus > 0) this.ready.set(key(run.spec.id, run.spec.stages[index]!.id), { run, index });
  }

  private arrive(i: number): void {
    const { run } = this.workload.arrivals[i]!;
    const result = this.scheduler.submit(run, this.now);
    if (!result.accepted) throw new Error(`elastic simulation: run ${run.id} rejected: ${result.field}: ${result.message}`);
    const track: RunTrack = { ...trackRun(run, this.now, this.workload.noise, this.random), readyAt: new Float64Array(run.stages.length) };
    this.runs.set(run.id, track);
    track.pending.forEach((p, k) => {
      if (p === 0) this.markReady(track, k);
    });
  }

  private finish(ref: number): void {
    const { run, index, gpus } = this.finishing[ref]!;
    const now = this.now;
    for (const g of gpus) {
      const w = this.workers[this.gpuWorker[g]!]!;
      if (--w.busy === 0) w.idleSince = now;
    }
    this.scheduler.finished(run.spec.id, run.spec.stages[index]!.id, now, "succeeded");
    run.remaining--;
    for (const c of run.dag.children[index]!) if (--run.pending[c]! === 0) this.markReady(run, c);
    if (run.remaining > 0) return;
    this.runs.delete(run.spec.id);
    this.completed++;
    if (run.spec.priority === "interactive") {
      this.interactiveLatency.push(now - run.at);
      this.interactiveRuns.push({ id: run.spec.id, at: run.at, latencyS: round(now - run.at)! });
    } else this.batchMakespan = now;
  }

  private place(): void {
    for (const d of this.scheduler.schedule(this.now)) {
      if (d.kind !== "placed") continue;
      const run = this.runs.get(d.runId)!;
      const index = run.byId.get(d.stageId)!;
      this.ready.delete(key(d.runId, d.stageId));
      if (run.spec.stages[index]!.gpus > 0) (run.spec.priority === "interactive" ? this.interactiveQueue : this.batchQueue).push(this.now - run.readyAt[index]!);
      for (const g of d.gpus) {
        const w = this.workers[this.gpuWorker[g]!]!;
        if (w.phase !== "up") throw new Error(`elastic simulation: stage placed on ${w.id}, which is ${w.phase}`);
        if (w.busy++ === 0) w.idleSince = null;
      }
      const load = d.reason.residentModel ? 0 : d.reason.modelLoadS;
      this.finishing.push({ run, index, gpus: d.gpus });
      this.push(this.now + load + run.actual[index]!, FINISH, this.finishing.length - 1);
    }
  }

  /** The demand controller's look: computeDemand on the workers and the waiting stages, then drain and scale up. Returns whether anything can still change. */
  private evaluate(): boolean {
    const { pool, workers } = this;
    const demandWorkers: DemandWorker[] = [];
    for (const w of workers) {
      if (w.phase === "off") continue;
      demandWorkers.push({ id: w.id, gpusBusy: w.busy, gpusFree: pool.gpusPerWorker - w.busy, draining: false, starting: w.phase === "starting", idleSinceS: w.phase === "up" ? w.idleSince : null });
    }
    const pending: PendingStage[] = [];
    for (const { run, index } of this.ready.values()) {
      const s = run.spec.stages[index]!;
      pending.push({ id: key(run.spec.id, s.id), gpus: s.gpus, vramMiB: s.vramMiB, priority: run.spec.priority, readySinceS: run.readyAt[index]! });
    }
    const result = computeDemand({ pool: this.demandPool, workers: demandWorkers, pending, nowS: this.now, state: this.demandState });
    this.demandState = result.state;
    for (const id of result.drain) this.drain(workers.find((x) => x.id === id)!);
    let live = demandWorkers.length - result.drain.length;
    for (const w of workers) {
      if (live >= result.desired) break;
      if (w.phase !== "off") continue;
      w.phase = "starting";
      this.paidGpus += pool.gpusPerWorker;
      this.push(this.now + pool.provisionDelayS, NODE_UP, workers.indexOf(w), w.generation);
      live++;
      this.scaleUps++;
    }
    const up = workers.filter((w) => w.phase === "up").length;
    const starting = workers.filter((w) => w.phase === "starting").length;
    this.peakWorkers = Math.max(this.peakWorkers, up + starting);
    const last = this.timeline[this.timeline.length - 1];
    if (last === undefined || last.desired !== result.desired || last.up !== up || last.starting !== starting) this.timeline.push({ at: round(this.now)!, desired: result.desired, up, starting });
    return up + starting > pool.minWorkers || this.runs.size > 0;
  }

  /** An idle worker drains at once: it takes no stage from now on, and its node (with its resident models) goes. */
  private drain(w: SimWorker): void {
    // Idle by computeDemand's contract; a busy one here would be a stage interrupted by a scale-down.
    if (w.busy > 0) throw new Error(`elastic simulation: demand drained ${w.id}, which runs a stage`);
    for (const g of w.gpus) {
      this.scheduler.setOnline(g, false);
      this.scheduler.forgetResidentExcept(this.gpuSpecs[g]!.id, []);
    }
    w.phase = "off";
    w.idleSince = null;
    w.generation++;
    this.paidGpus -= this.pool.gpusPerWorker;
    this.drains++;
  }

  private nodeUp(k: number, gen: number): void {
    const w = this.workers[k]!;
    if (w.generation !== gen || w.phase !== "starting") return;
    w.phase = "up";
    w.idleSince = this.now;
    for (const g of w.gpus) this.scheduler.setOnline(g, true);
  }
}
