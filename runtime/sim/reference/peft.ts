/**
 * PEFT, Predict Earliest Finish Time (Arabnejad & Barbosa, IEEE TPDS 25(3), 2014).
 *
 * PEFT's optimistic cost table OCT(t, p) is the longest path from t's children to the exit, each child
 * on its best processor, with communication costs between processors. Why it reduces here: the
 * simulated GPUs are identical and the WfCommons problem has no transfers, so OCT(t, p) is the same
 * on every p and equals upward rank minus t's own duration; rank_oct (the mean of the row) is that
 * value too, and the processor choice "minimum EFT + OCT" becomes minimum EFT. What stays different
 * from the planner (which lists by upward rank, perturbed, with a non-delay list schedule): the
 * priority ignores the stage's own duration, and placement is insertion-based (a stage may go into an
 * idle gap left earlier on a GPU).
 */
import { insertionSchedule, priorityOrder, upwardRank, type RefProblem, type RefSchedule } from "./schedule.ts";

/** The optimistic cost of each stage on identical GPUs without transfers: upward rank minus its duration. */
export function optimisticCost(p: RefProblem): number[] {
  const rank = upwardRank(p.dag, p.durations as number[]);
  return rank.map((r, i) => r - p.durations[i]!);
}

export function peftSchedule(p: RefProblem): RefSchedule {
  return insertionSchedule(p, priorityOrder(p.dag, optimisticCost(p)));
}
