/**
 * CPOP, Critical-Path-on-a-Processor (Topcuoglu, Hariri & Wu, IEEE TPDS 13(3), 2002).
 *
 * Priority is upward plus downward rank; the stages of one critical path (priority equal to the
 * entry's) all go to the critical-path processor, the others to the processor with the earliest
 * finish, insertion-based. Why it reduces here: with identical GPUs and no transfers every processor
 * runs the critical path equally fast, so the critical-path processor is GPU 0 (the paper's choice,
 * minimum total critical-path cost, is a tie on all of them). What stays different from the planner:
 * the priority (rank_u + rank_d, not rank_u), the pinning of the critical path to one GPU, and
 * insertion into idle gaps.
 */
import { EPS, downwardRank, insertionSchedule, priorityOrder, upwardRank, type RefProblem, type RefSchedule } from "./schedule.ts";

export function cpopPriority(p: RefProblem): number[] {
  const up = upwardRank(p.dag, p.durations as number[]);
  const down = downwardRank(p.dag, p.durations);
  return up.map((u, i) => u + down[i]!);
}

/** One critical path, as the paper walks it: from an entry stage of top priority, always a child of equal priority (lowest index). */
export function criticalPathSet(p: RefProblem, priority: readonly number[]): Set<number> {
  const cp = priority.reduce((a, b) => Math.max(a, b), 0);
  const on = (i: number) => Math.abs(priority[i]! - cp) <= EPS * Math.max(1, cp);
  const set = new Set<number>();
  let k: number | undefined = p.dag.order.find((i) => p.dag.parents[i]!.length === 0 && on(i));
  while (k !== undefined) {
    set.add(k);
    k = [...p.dag.children[k]!].sort((a, b) => a - b).find(on);
  }
  return set;
}

export function cpopSchedule(p: RefProblem): RefSchedule {
  const priority = cpopPriority(p);
  const cp = criticalPathSet(p, priority);
  return insertionSchedule(p, priorityOrder(p.dag, priority), (i) => (cp.has(i) ? 0 : null));
}
