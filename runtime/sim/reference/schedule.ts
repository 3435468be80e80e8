/**
 * The scheduling problem the independent references solve, and the one checker every schedule they
 * return must pass.
 *
 * The problem is what the simulator judges on WfCommons instances (runtime/sim/workloads/wfcommons.ts):
 * every stage asks for exactly one GPU and fits any GPU of the pool (1 GiB of VRAM on 80 GiB cards,
 * no model loads, no transfers, no noise), so VRAM and GPU counts drop out and what remains is
 * P | prec | Cmax: stages with fixed durations, precedence, identical machines, minimize makespan.
 */
import { buildDag, criticalPath, upwardRank, type Dag } from "../../scheduler/dag.ts";
import { deriveSeed, seededRandom } from "../../scheduler/prng.ts";
import type { StageSpec } from "../../scheduler/types.ts";
import type { DagProblem } from "../workloads/wfcommons.ts";

export interface RefProblem {
  readonly name: string;
  readonly dag: Dag;
  readonly durations: readonly number[];
  /** Identical GPUs; every stage runs on one of them. */
  readonly machines: number;
}

/** A schedule: per stage its start, finish and GPU (0..machines-1). */
export interface RefSchedule {
  readonly start: readonly number[];
  readonly finish: readonly number[];
  readonly gpu: readonly number[];
  readonly makespan: number;
}

/** Absolute slack for floating-point sums of recorded runtimes (seconds). */
export const EPS = 1e-6;

export function refProblem(problem: DagProblem, machines: number): RefProblem {
  return { name: problem.name, dag: problem.dag, durations: problem.durations, machines };
}

/** max(critical path, total work / machines): the bound the simulator prints as lower_bound_s. */
export function refLowerBound(p: RefProblem): number {
  const work = p.durations.reduce((a, b) => a + b, 0);
  return Math.max(criticalPath(p.dag, p.durations), work / p.machines);
}

/**
 * Every way a schedule can be wrong, as sentences (empty when valid): wrong lengths, a GPU out of
 * range, a finish that is not start + duration, a stage starting before a parent finishes, two
 * stages on one GPU at once, a makespan that is not the last finish. A zero-length stage takes no
 * GPU time, so it overlaps nothing.
 */
export function checkSchedule(p: RefProblem, s: RefSchedule): string[] {
  const n = p.durations.length;
  const issues: string[] = [];
  for (const key of ["start", "finish", "gpu"] as const) {
    if (s[key].length !== n) issues.push(`${key} has ${s[key].length} entries for ${n} stages`);
  }
  if (issues.length > 0) return issues;
  let last = 0;
  for (let i = 0; i < n; i++) {
    const g = s.gpu[i]!;
    if (!Number.isInteger(g) || g < 0 || g >= p.machines) issues.push(`stage ${i}: gpu ${g} is not one of 0..${p.machines - 1}`);
    if (!(s.start[i]! >= -EPS)) issues.push(`stage ${i}: start ${s.start[i]} is negative`);
    if (Math.abs(s.finish[i]! - s.start[i]! - p.durations[i]!) > EPS) issues.push(`stage ${i}: runs ${s.finish[i]! - s.start[i]!} s, its duration is ${p.durations[i]} s`);
    for (const parent of p.dag.parents[i]!) {
      if (s.start[i]! < s.finish[parent]! - EPS) issues.push(`stage ${i} starts at ${s.start[i]} before its parent ${parent} finishes at ${s.finish[parent]}`);
    }
    last = Math.max(last, s.finish[i]!);
  }
  if (Math.abs(last - s.makespan) > EPS) issues.push(`makespan ${s.makespan} is not the last finish ${last}`);
  const byGpu = new Map<number, number[]>();
  for (let i = 0; i < n; i++) if (p.durations[i]! > 0) byGpu.set(s.gpu[i]!, [...(byGpu.get(s.gpu[i]!) ?? []), i]);
  for (const [g, stages] of byGpu) {
    stages.sort((a, b) => s.start[a]! - s.start[b]! || a - b);
    for (let k = 1; k < stages.length; k++) {
      const a = stages[k - 1]!;
      const b = stages[k]!;
      if (s.start[b]! < s.finish[a]! - EPS) issues.push(`gpu ${g} runs stages ${a} and ${b} at once (${s.start[b]} < ${s.finish[a]})`);
    }
  }
  return issues;
}

/** Busy intervals of one GPU, sorted, for insertion-based placement (HEFT, CPOP and PEFT all use it). */
export class GpuTimeline {
  private readonly busy: { start: number; finish: number }[] = [];

  /** The earliest start ≥ ready at which a stage of `duration` fits into a gap of this GPU. */
  earliestStart(ready: number, duration: number): number {
    let t = ready;
    for (const b of this.busy) {
      if (t + duration <= b.start + EPS) return t;
      if (b.finish > t) t = b.finish;
    }
    return t;
  }

  /** The end of the last busy interval (placement without insertion). */
  availableAt(): number {
    return this.busy.length === 0 ? 0 : this.busy[this.busy.length - 1]!.finish;
  }

  occupy(start: number, finish: number): void {
    if (finish <= start) return;
    let k = this.busy.length;
    while (k > 0 && this.busy[k - 1]!.start > start) k--;
    this.busy.splice(k, 0, { start, finish });
  }
}

/**
 * A list schedule with insertion: stages in `order` (which must respect precedence), each on the
 * GPU that finishes it earliest (lowest index on ties), or on `pinned[i]` where given.
 */
export function insertionSchedule(p: RefProblem, order: readonly number[], pinned?: (i: number) => number | null): RefSchedule {
  const n = p.durations.length;
  const start = new Array<number>(n).fill(0);
  const finish = new Array<number>(n).fill(0);
  const gpu = new Array<number>(n).fill(0);
  const gpus = Array.from({ length: p.machines }, () => new GpuTimeline());
  for (const i of order) {
    let ready = 0;
    for (const parent of p.dag.parents[i]!) ready = Math.max(ready, finish[parent]!);
    const d = p.durations[i]!;
    const pin = pinned?.(i) ?? null;
    let bestGpu = pin ?? 0;
    let bestStart = gpus[bestGpu]!.earliestStart(ready, d);
    if (pin === null) {
      for (let g = 1; g < p.machines; g++) {
        const t = gpus[g]!.earliestStart(ready, d);
        if (t < bestStart) [bestGpu, bestStart] = [g, t];
      }
    }
    start[i] = bestStart;
    finish[i] = bestStart + d;
    gpu[i] = bestGpu;
    gpus[bestGpu]!.occupy(bestStart, bestStart + d);
  }
  return { start, finish, gpu, makespan: finish.reduce((a, b) => Math.max(a, b), 0) };
}

/**
 * Ready-list order: repeatedly the ready stage with the highest priority (lowest index on ties);
 * a stage becomes ready when all its parents have been taken.
 */
export function priorityOrder(dag: Dag, priority: readonly number[]): number[] {
  const n = priority.length;
  const pending = dag.parents.map((ps) => ps.length);
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (pending[i] === 0) ready.push(i);
  const order: number[] = [];
  while (ready.length > 0) {
    let k = 0;
    for (let j = 1; j < ready.length; j++) {
      const a = ready[j]!;
      const b = ready[k]!;
      if (priority[a]! > priority[b]! || (priority[a] === priority[b] && a < b)) k = j;
    }
    const i = ready.splice(k, 1)[0]!;
    order.push(i);
    for (const c of dag.children[i]!) if (--pending[c]! === 0) ready.push(c);
  }
  return order;
}

/** Downward rank: the longest path from any entry stage to the start of stage i. */
export function downwardRank(dag: Dag, durations: readonly number[]): number[] {
  const rank = new Array<number>(durations.length).fill(0);
  for (const i of dag.order) {
    for (const parent of dag.parents[i]!) rank[i] = Math.max(rank[i]!, rank[parent]! + durations[parent]!);
  }
  return rank;
}

export { upwardRank };

/**
 * A random DAG of `stages` stages (each stage's parents drawn among the earlier ones, about a third
 * of the pairs within reach, at most three parents), whole-second durations 1..9, from a seed.
 * Small enough that the MILP proves its optimum in well under a second.
 */
export function randomDagProblem(seed: number, stages: number, machines: number): { problem: RefProblem; stages: StageSpec[] } {
  const random = seededRandom(deriveSeed(seed, `reference-dag:${stages}:${machines}`));
  const specs: StageSpec[] = [];
  for (let i = 0; i < stages; i++) {
    const needs: string[] = [];
    for (let j = Math.max(0, i - 6); j < i; j++) if (needs.length < 3 && random() < 0.35) needs.push(`t${j}`);
    // Mostly short stages and a few long ones (1..20 s, skewed), as in workflow traces.
    specs.push({ id: `t${i}`, needs, gpus: 1, vramMiB: 1024, durationS: 1 + Math.floor(random() ** 2 * 20), modelLoadS: 0 });
  }
  const dag = buildDag(specs, "stages");
  if (Array.isArray(dag)) throw new Error(`random DAG ${seed}: ${dag.map((d) => d.message).join("; ")}`);
  return { problem: { name: `random-${stages}x${machines}-seed${seed}`, dag, durations: specs.map((s) => s.durationS!), machines }, stages: specs };
}

/** Every stage one after another on GPU 0, in topological order: the weakest valid schedule (makespan = total work). */
export function serialSchedule(p: RefProblem): RefSchedule {
  return insertionSchedule(p, p.dag.order, () => 0);
}
