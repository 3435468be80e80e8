/**
 * What both simulators (fixed GPUs with a policy, and an elastic pool with the real scheduler) keep of a
 * run while it is in flight, and their event order. One place, so the two draw stage durations from
 * the seeded stream in the same order and their figures stay comparable.
 */
import { buildDag, type Dag } from "../scheduler/dag.ts";
import { Heap } from "../scheduler/heap.ts";
import type { RunSpec } from "../scheduler/types.ts";

export interface RunTrack {
  readonly spec: RunSpec;
  readonly at: number;
  readonly dag: Dag;
  /** Stage index by stage id. */
  readonly byId: Map<string, number>;
  /** Each stage's simulated duration in seconds (its declared one with the workload's noise). */
  readonly actual: Float64Array;
  /** Each stage's parents not finished yet. */
  readonly pending: Int32Array;
  remaining: number;
}

/**
 * A run arriving at `at`: its DAG, and one draw from `random` per stage, in stage order, for its
 * duration within ±noise of the declared one.
 */
export function trackRun(run: RunSpec, at: number, noise: number, random: () => number): RunTrack {
  const dag = buildDag(run.stages) as Dag;
  const actual = Float64Array.from(run.stages, (s) => s.durationS * (1 + noise * (2 * random() - 1)));
  return { spec: run, at, dag, byId: new Map(run.stages.map((s, k) => [s.id, k])), actual, pending: Int32Array.from(dag.parents, (p) => p.length), remaining: run.stages.length };
}

/** The event kinds both simulators have; the elastic one numbers its own from 2. */
export const ARRIVAL = 0;
export const FINISH = 1;

/** An event: `ref` is an index into what `kind` concerns (the workload's arrivals, the attempts started). */
export interface SimEvent {
  readonly time: number;
  /** Order of pushing, which breaks ties in time. */
  readonly seq: number;
  readonly kind: number;
  readonly ref: number;
}

/** Events at the same time run in the order they were pushed (`seq`), so a simulation is deterministic. */
export function eventQueue<E extends { readonly time: number; readonly seq: number }>(): Heap<E> {
  return new Heap<E>((a, b) => a.time < b.time || (a.time === b.time && a.seq < b.seq));
}
