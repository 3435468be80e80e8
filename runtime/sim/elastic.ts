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
import { buildDag, type Dag } from "../scheduler/dag.ts";
import { computeDemand, type DemandState, type DemandWorker, type PendingStage } from "../scheduler/demand.ts";
import { Heap } from "../scheduler/heap.ts";
import { parsePoolSpec } from "../scheduler/inventory.ts";
import { deriveSeed, seededRandom } from "../scheduler/prng.ts";
import { Scheduler } from "../scheduler/scheduler.ts";
import type { RunSpec } from "../scheduler/types.ts";
import { percentile, round } from "./metrics.ts";
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

interface RunTrack {
  readonly spec: RunSpec;
  readonly at: number;
  readonly dag: Dag;
  readonly byId: Map<string, number>;
  readonly actual: Float64Array;
  readonly pending: Int32Array;
  readonly readyAt: Float64Array;
  remaining: number;
}

const ARRIVAL = 0;
const FINISH = 1;
const NODE_UP = 2;
const EVALUATE = 3;

interface SimEvent {
  readonly time: number;
  readonly seq: number;
  readonly kind: number;
  readonly ref: number;
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
  const random = seededRandom(deriveSeed(options.seed, `durations:${workload.name}`));
  const gpuSpecs = parsePoolSpec(`${pool.maxWorkers}x${pool.gpusPerWorker}x${pool.model}-${pool.memoryGiB}`);
  const scheduler = new Scheduler({ gpus: gpuSpecs, tenants: workload.tenants, settings: workload.settings ?? {} });
  const gpuWorker = new Int32Array(gpuSpecs.length);
  const workers: SimWorker[] = Array.from({ length: pool.maxWorkers }, (_, k) => {
    const gpus = Array.from({ length: pool.gpusPerWorker }, (_, j) => k * pool.gpusPerWorker + j);
    for (const g of gpus) gpuWorker[g] = k;
    return { id: gpuSpecs[k * pool.gpusPerWorker]!.node, gpus, phase: "off" as WorkerPhase, busy: 0, idleSince: null, generation: 0 };
  });
  const demandPool = {
    gpusPerWorker: pool.gpusPerWorker,
    vramMiBPerGpu: gpuSpecs[0]!.memoryMiB - (workload.settings?.headroomMiB ?? 0),
    minWorkers: pool.minWorkers,
    maxWorkers: pool.maxWorkers,
    scaleDownCooldownS: pool.cooldownS,
    ...(pool.batchScaleUpDelayS !== undefined ? { batchScaleUpDelayS: pool.batchScaleUpDelayS } : {}),
  };
  const evaluateEvery = pool.evaluateEveryS ?? 10;

  const events = new Heap<SimEvent>((a, b) => a.time < b.time || (a.time === b.time && a.seq < b.seq));
  let seq = 0;
  const push = (time: number, kind: number, ref: number, gen = 0) => events.push({ time, seq: seq++, kind, ref, gen });
  workload.arrivals.forEach((a, i) => push(a.at, ARRIVAL, i));

  let now = 0;
  let gpuSeconds = 0;
  let paidGpus = 0;
  let lastQuiet = 0;
  let peakWorkers = 0;
  let scaleUps = 0;
  let drains = 0;
  let completed = 0;
  let batchMakespan: number | null = null;
  let demandState: DemandState = { surplusSinceS: null };
  let evaluatePending = false;
  const runs = new Map<string, RunTrack>();
  // Ready GPU stages not placed yet, by "runId\0stageId".
  const ready = new Map<string, { run: RunTrack; index: number }>();
  const interactiveLatency: number[] = [];
  const interactiveQueue: number[] = [];
  const batchQueue: number[] = [];
  const timeline: ElasticTimelinePoint[] = [];
  const interactiveRuns: { id: string; at: number; latencyS: number }[] = [];

  // Minimum workers are up from the start: a fixed pool is all up, an elastic one keeps its warm floor.
  for (const [k, w] of workers.entries()) {
    if (k < pool.minWorkers) {
      w.phase = "up";
      w.idleSince = 0;
      paidGpus += pool.gpusPerWorker;
    } else for (const g of w.gpus) scheduler.setOnline(g, false);
  }

  const advance = (to: number) => {
    if (to > now) gpuSeconds += paidGpus * (to - now);
    now = to;
  };
  const key = (runId: string, stageId: string) => `${runId}\0${stageId}`;
  const markReady = (run: RunTrack, index: number) => {
    run.readyAt[index] = now;
    if (run.spec.stages[index]!.gpus > 0) ready.set(key(run.spec.id, run.spec.stages[index]!.id), { run, index });
  };

  const arrive = (i: number) => {
    const { run } = workload.arrivals[i]!;
    const result = scheduler.submit(run, now);
    if (!result.accepted) throw new Error(`elastic simulation: run ${run.id} rejected: ${result.field}: ${result.message}`);
    const dag = buildDag(run.stages) as Dag;
    const actual = Float64Array.from(run.stages, (s) => s.durationS * (1 + workload.noise * (2 * random() - 1)));
    const track: RunTrack = { spec: run, at: now, dag, byId: new Map(run.stages.map((s, k) => [s.id, k])), actual, pending: Int32Array.from(dag.parents, (p) => p.length), readyAt: new Float64Array(run.stages.length), remaining: run.stages.length };
    runs.set(run.id, track);
    track.pending.forEach((p, k) => {
      if (p === 0) markReady(track, k);
    });
  };

  const finish = (ref: number) => {
    const entry = finishing[ref]!;
    const { run, index, gpus } = entry;
    const stage = run.spec.stages[index]!;
    for (const g of gpus) {
      const w = workers[gpuWorker[g]!]!;
      if (--w.busy === 0) w.idleSince = now;
    }
    scheduler.finished(run.spec.id, stage.id, now, "succeeded");
    run.remaining--;
    for (const c of run.dag.children[index]!) if (--run.pending[c]! === 0) markReady(run, c);
    if (run.remaining === 0) {
      runs.delete(run.spec.id);
      completed++;
      if (run.spec.priority === "interactive") {
        interactiveLatency.push(now - run.at);
        interactiveRuns.push({ id: run.spec.id, at: run.at, latencyS: round(now - run.at)! });
      }
      else batchMakespan = now;
    }
  };
  const finishing: { run: RunTrack; index: number; gpus: readonly number[] }[] = [];

  const place = () => {
    for (const d of scheduler.schedule(now)) {
      if (d.kind !== "placed") continue;
      const run = runs.get(d.runId)!;
      const index = run.byId.get(d.stageId)!;
      const stage = run.spec.stages[index]!;
      ready.delete(key(d.runId, d.stageId));
      const waited = now - run.readyAt[index]!;
      if (stage.gpus > 0) (run.spec.priority === "interactive" ? interactiveQueue : batchQueue).push(waited);
      for (const g of d.gpus) {
        const w = workers[gpuWorker[g]!]!;
        if (w.phase !== "up") throw new Error(`elastic simulation: stage placed on ${w.id}, which is ${w.phase}`);
        if (w.busy++ === 0) w.idleSince = null;
      }
      const load = d.reason.residentModel ? 0 : d.reason.modelLoadS;
      const entry = { run, index, gpus: d.gpus };
      finishing.push(entry);
      push(now + load + run.actual[index]!, FINISH, finishing.length - 1);
    }
  };

  const evaluate = () => {
    const demandWorkers: DemandWorker[] = [];
    for (const w of workers) {
      if (w.phase === "off") continue;
      demandWorkers.push({ id: w.id, gpusBusy: w.busy, gpusFree: pool.gpusPerWorker - w.busy, draining: false, starting: w.phase === "starting", idleSinceS: w.phase === "up" ? w.idleSince : null });
    }
    const pending: PendingStage[] = [];
    for (const { run, index } of ready.values()) {
      const s = run.spec.stages[index]!;
      pending.push({ id: key(run.spec.id, s.id), gpus: s.gpus, vramMiB: s.vramMiB, priority: run.spec.priority, readySinceS: run.readyAt[index]! });
    }
    const result = computeDemand({ pool: demandPool, workers: demandWorkers, pending, nowS: now, state: demandState });
    demandState = result.state;
    for (const id of result.drain) {
      const w = workers.find((x) => x.id === id)!;
      // Idle by computeDemand's contract; a busy one here would be a stage interrupted by a scale-down.
      if (w.busy > 0) throw new Error(`elastic simulation: demand drained ${id}, which runs a stage`);
      for (const g of w.gpus) {
        scheduler.setOnline(g, false);
        scheduler.forgetResidentExcept(gpuSpecs[g]!.id, []);
      }
      w.phase = "off";
      w.idleSince = null;
      w.generation++;
      paidGpus -= pool.gpusPerWorker;
      drains++;
    }
    let live = demandWorkers.length - result.drain.length;
    for (const w of workers) {
      if (live >= result.desired) break;
      if (w.phase !== "off") continue;
      w.phase = "starting";
      paidGpus += pool.gpusPerWorker;
      push(now + pool.provisionDelayS, NODE_UP, workers.indexOf(w), w.generation);
      live++;
      scaleUps++;
    }
    const up = workers.filter((w) => w.phase === "up").length;
    const starting = workers.filter((w) => w.phase === "starting").length;
    peakWorkers = Math.max(peakWorkers, up + starting);
    const last = timeline[timeline.length - 1];
    if (last === undefined || last.desired !== result.desired || last.up !== up || last.starting !== starting) timeline.push({ at: round(now)!, desired: result.desired, up, starting });
    return up + starting > pool.minWorkers || runs.size > 0;
  };

  const nodeUp = (k: number, gen: number) => {
    const w = workers[k]!;
    if (w.generation !== gen || w.phase !== "starting") return;
    w.phase = "up";
    w.idleSince = now;
    for (const g of w.gpus) scheduler.setOnline(g, true);
  };

  while (events.size > 0) {
    const t = events.peek()!.time;
    advance(t);
    let tick = false;
    while (events.size > 0 && events.peek()!.time === t) {
      const e = events.pop()!;
      if (e.kind === ARRIVAL) arrive(e.ref);
      else if (e.kind === FINISH) finish(e.ref);
      else if (e.kind === NODE_UP) nodeUp(e.ref, e.gen);
      else tick = true;
    }
    if (tick) evaluatePending = false;
    place();
    const busy = evaluate();
    // Freshly up workers take stages at once; then the controller looks again on its period while anything can change.
    place();
    if (busy && !evaluatePending) {
      push(now + evaluateEvery, EVALUATE, 0);
      evaluatePending = true;
    }
    if (!busy) lastQuiet = now;
  }
  const billed = Math.max(workload.horizonS, lastQuiet);
  advance(billed);
  const gpuHours = gpuSeconds / 3600;
  const mean = (v: readonly number[]) => (v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length);
  const row: ElasticRow = {
    workload: workload.name,
    pool: options.label ?? (pool.minWorkers === pool.maxWorkers ? `fixed-${pool.maxWorkers}` : `elastic-${pool.minWorkers}-${pool.maxWorkers}`),
    min_workers: pool.minWorkers,
    max_workers: pool.maxWorkers,
    gpu_hours: round(gpuHours, 2),
    cost: round(gpuHours * pool.pricePerGpuHour, 2),
    interactive_p50_s: round(percentile(interactiveLatency, 50)),
    interactive_p99_s: round(percentile(interactiveLatency, 99)),
    interactive_queue_p99_s: round(percentile(interactiveQueue, 99)),
    interactive_queue_mean_s: round(mean(interactiveQueue)),
    batch_queue_mean_s: round(mean(batchQueue)),
    batch_makespan_s: round(batchMakespan),
    runs_completed: completed,
    runs_submitted: workload.arrivals.length,
    peak_workers: peakWorkers,
    scale_ups: scaleUps,
    drains,
    stages_interrupted: 0,
    billed_s: round(billed),
  };
  return { row, timeline, interactiveRuns, interactiveQueueS: interactiveQueue };
}
