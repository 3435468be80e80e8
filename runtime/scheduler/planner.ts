/**
 * Planning ahead for a run whose DAG and durations are known: simulate many list schedules of the
 * run alone on its GPUs (HEFT upward rank, other tie-breaks, perturbed ranks, then local search
 * around the best), keep the shortest, and hand the scheduler a priority per stage that replays
 * that plan. Dispatching by those priorities stays a valid list schedule when reality deviates.
 */
import { Heap } from "./heap.ts";
import { deriveSeed, seededRandom, type Random } from "./prng.ts";
import { upwardRank, type Dag } from "./dag.ts";

export interface ListSchedule {
  readonly makespan: number;
  readonly start: Float64Array;
}

/**
 * Non-delay list scheduling on `machines` identical machines: whenever machines are free, start
 * the ready tasks with the highest keys (ties by index). Completions at one instant are all
 * processed before starting anything, which is how the simulator and the agent dispatch too.
 */
export function listSchedule(dag: Dag, duration: ArrayLike<number>, key: ArrayLike<number>, machines: number): ListSchedule {
  const n = duration.length;
  const start = new Float64Array(n);
  const pending = new Int32Array(n);
  for (let i = 0; i < n; i++) pending[i] = dag.parents[i]!.length;
  const ready = new Heap<number>((a, b) => key[a]! > key[b]! || (key[a] === key[b] && a < b));
  for (let i = 0; i < n; i++) if (pending[i] === 0) ready.push(i);
  const finish = new Float64Array(n);
  const running = new Heap<number>((a, b) => finish[a]! < finish[b]! || (finish[a] === finish[b] && a < b));
  let free = Math.max(1, machines);
  let now = 0;
  let makespan = 0;
  for (;;) {
    while (free > 0 && ready.size > 0) {
      const t = ready.pop()!;
      start[t] = now;
      finish[t] = now + duration[t]!;
      if (finish[t]! > makespan) makespan = finish[t]!;
      running.push(t);
      free--;
    }
    if (running.size === 0) break;
    now = finish[running.peek()!]!;
    while (running.size > 0 && finish[running.peek()!] === now) {
      const t = running.pop()!;
      free++;
      for (const c of dag.children[t]!) if (--pending[c]! === 0) ready.push(c);
    }
  }
  return { makespan, start };
}

export interface Plan {
  readonly makespan: number;
  /** Priority per stage that replays the plan: planned makespan minus planned start. */
  readonly priority: Float64Array;
  readonly start: Float64Array;
  readonly variantsTried: number;
  readonly variant: string;
}

export interface PlanOptions {
  /** List schedules to try in all (the deterministic variants count too). */
  readonly budget?: number;
  readonly seed?: number;
}

/** Randomized critical-path keys: upward rank scaled by a factor in [1 - spread, 1 + spread]. */
export function perturbedRank(rank: readonly number[], random: Random, spread: number): Float64Array {
  const key = new Float64Array(rank.length);
  for (let i = 0; i < rank.length; i++) key[i] = rank[i]! * (1 + spread * (2 * random() - 1));
  return key;
}

export function planRun(dag: Dag, duration: readonly number[], machines: number, options: PlanOptions = {}): Plan {
  const budget = Math.max(8, options.budget ?? 1500);
  const random = seededRandom(deriveSeed(options.seed ?? 1, "plan"));
  const n = duration.length;
  const rank = upwardRank(dag, duration);
  const descendants = countDescendants(dag);
  let tried = 0;
  let best: { makespan: number; key: Float64Array; start: Float64Array; variant: string } | null = null;
  const consider = (key: Float64Array, variant: string) => {
    tried++;
    const s = listSchedule(dag, duration, key, machines);
    if (best === null || s.makespan < best.makespan) best = { makespan: s.makespan, key, start: s.start, variant };
  };
  const maxRank = rank.reduce((a, b) => Math.max(a, b), 1);
  const eps = maxRank * 1e-9;
  consider(Float64Array.from(rank), "heft-upward-rank");
  consider(Float64Array.from(rank, (r, i) => r + eps * descendants[i]! / Math.max(1, n)), "rank+descendants");
  consider(Float64Array.from(rank, (r, i) => r + eps * duration[i]! / maxRank), "rank+longest-first");
  consider(Float64Array.from(rank, (r, i) => r - eps * duration[i]! / maxRank), "rank+shortest-first");
  consider(Float64Array.from(rank, (r, i) => r + duration[i]!), "rank+own-duration");
  const spreads = [0.05, 0.1, 0.2, 0.35];
  const explore = Math.floor((budget - tried) / 2);
  for (let k = 0; k < explore; k++) consider(perturbedRank(rank, random, spreads[k % spreads.length]!), "perturbed-rank");
  // Local search: small perturbations around the best keys found so far.
  while (tried < budget) {
    const base = best!.key;
    const key = Float64Array.from(base);
    const moves = 1 + Math.floor(random() * 3);
    for (let m = 0; m < moves; m++) {
      const i = Math.floor(random() * n);
      key[i] = key[i]! * (1 + 0.3 * (2 * random() - 1));
    }
    consider(key, "local-search");
  }
  const chosen = best!;
  const priority = new Float64Array(n);
  for (let i = 0; i < n; i++) priority[i] = chosen.makespan - chosen.start[i]!;
  return { makespan: chosen.makespan, priority, start: chosen.start, variantsTried: tried, variant: chosen.variant };
}

function countDescendants(dag: Dag): number[] {
  const n = dag.parents.length;
  const count = new Array<number>(n).fill(0);
  for (let k = dag.order.length - 1; k >= 0; k--) {
    const i = dag.order[k]!;
    for (const c of dag.children[i]!) count[i] += 1 + count[c]!;
  }
  return count;
}
