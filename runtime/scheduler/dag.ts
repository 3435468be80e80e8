/** DAG helpers over a run's stages: validation, topological order, upward rank (HEFT). */
import type { FieldIssue } from "../config/errors.ts";
import type { StageSpec } from "./types.ts";

export interface Dag {
  /** Parent indexes per stage. */
  readonly parents: readonly (readonly number[])[];
  readonly children: readonly (readonly number[])[];
  /** Stage indexes, parents before children. */
  readonly order: readonly number[];
}

/** Runs with at most this many stages look ids up by scanning instead of building a map. */
const SCAN_MAX = 16;

/** Builds the DAG of a run's stages, or returns the issues (duplicate ids, unknown needs, cycles). */
export function buildDag(stages: readonly StageSpec[], field = "stages"): Dag | FieldIssue[] {
  const issues: FieldIssue[] = [];
  const n = stages.length;
  // Small runs (most) find ids by a scan of the stage list; larger ones through a map.
  const index = n > SCAN_MAX ? new Map<string, number>() : null;
  const indexOf = (id: string): number | undefined => {
    if (index !== null) return index.get(id);
    for (let k = 0; k < n; k++) if (stages[k]!.id === id) return k;
    return undefined;
  };
  for (let i = 0; i < n; i++) {
    const s = stages[i]!;
    if (index !== null ? index.has(s.id) : indexOf(s.id)! < i) issues.push({ field: `${field}[${i}].id`, message: `duplicate stage id '${s.id}': ids must be unique within a run` });
    else index?.set(s.id, i);
  }
  const parents: number[][] = new Array(n);
  const children: number[][] = new Array(n);
  for (let i = 0; i < n; i++) {
    parents[i] = [];
    children[i] = [];
  }
  for (let i = 0; i < n; i++) {
    const s = stages[i]!;
    const needs = s.needs;
    for (let j = 0; j < needs.length; j++) {
      const need = needs[j]!;
      const p = indexOf(need);
      if (p === undefined) issues.push({ field: `${field}[${i}].needs[${j}]`, message: `unknown stage '${need}': name a stage of the same run` });
      else if (p === i) issues.push({ field: `${field}[${i}].needs[${j}]`, message: `stage '${s.id}' needs itself: remove it` });
      else if (!parents[i]!.includes(p)) {
        parents[i]!.push(p);
        children[p]!.push(i);
      }
    }
  }
  if (issues.length > 0) return issues;
  // Kahn's algorithm; FIFO by index keeps the order deterministic.
  const pending = parents.map((p) => p.length);
  const order: number[] = [];
  for (let i = 0; i < stages.length; i++) if (pending[i] === 0) order.push(i);
  for (let k = 0; k < order.length; k++) {
    for (const c of children[order[k]!]!) if (--pending[c]! === 0) order.push(c);
  }
  if (order.length < stages.length) {
    const stuck = stages.map((s, i) => (pending[i]! > 0 ? s.id : null)).filter((x): x is string => x !== null);
    return [{ field, message: `the needs form a cycle through ${stuck.slice(0, 5).join(", ")}${stuck.length > 5 ? ", …" : ""}: a stage cannot wait on itself` }];
  }
  return { parents, children, order };
}

/** Upward rank (HEFT): a stage's cost plus the longest path of costs below it. */
export function upwardRank(dag: Dag, cost: readonly number[]): number[] {
  const rank = new Array<number>(cost.length).fill(0);
  for (let k = dag.order.length - 1; k >= 0; k--) {
    const i = dag.order[k]!;
    let best = 0;
    for (const c of dag.children[i]!) if (rank[c]! > best) best = rank[c]!;
    rank[i] = cost[i]! + best;
  }
  return rank;
}

/** Longest path of costs through the DAG. */
export function criticalPath(dag: Dag, cost: readonly number[]): number {
  let best = 0;
  for (const r of upwardRank(dag, cost)) if (r > best) best = r;
  return best;
}
