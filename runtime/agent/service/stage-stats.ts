/**
 * Stage duration statistics of a workflow across its runs (the dashboard's workflow page): percentiles of
 * each stage's seconds, and a regression flag comparing the last runs with the ones before them.
 */
import type { WorkflowRunTimes } from "../store/types.ts";

/** Runs counted as "recent"; the runs before them are the baseline. */
export const RECENT_RUNS = 10;
/** Values each side needs before a regression is flagged: fewer say too little. */
export const MIN_RUNS_EACH_SIDE = 5;
/** Recent median at least this many times the baseline's: a regression. */
export const REGRESSION_FACTOR = 1.25;

export interface StageStats {
  readonly stageId: string;
  readonly count: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly recentP50: number | null;
  readonly baselineP50: number | null;
  readonly regression: boolean;
}

/**
 * The p-th percentile (0..1) of values, interpolated linearly between the two closest ranks (numpy's
 * default): the median of an even count is the mean of its two middle values. null for no values.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** `runs`: newest first, as the store gives them. Stages in the order they first appear. */
export function stageStats(runs: readonly WorkflowRunTimes[]): StageStats[] {
  // Per stage, its seconds in run order, newest first, with the run's position: "recent" means the
  // workflow's last RECENT_RUNS runs, whether or not the stage ran in each of them.
  const byStage = new Map<string, Array<{ run: number; seconds: number }>>();
  runs.forEach((run, index) => {
    for (const s of run.stages) {
      let list = byStage.get(s.stageId);
      if (!list) byStage.set(s.stageId, (list = []));
      list.push({ run: index, seconds: s.seconds });
    }
  });
  return [...byStage.entries()].map(([stageId, list]) => {
    const all = list.map((x) => x.seconds);
    const recent = list.filter((x) => x.run < RECENT_RUNS).map((x) => x.seconds);
    const baseline = list.filter((x) => x.run >= RECENT_RUNS).map((x) => x.seconds);
    const recentP50 = percentile(recent, 0.5);
    const baselineP50 = percentile(baseline, 0.5);
    const regression =
      recent.length >= MIN_RUNS_EACH_SIDE && baseline.length >= MIN_RUNS_EACH_SIDE && recentP50! >= REGRESSION_FACTOR * baselineP50!;
    return { stageId, count: all.length, p50: percentile(all, 0.5), p90: percentile(all, 0.9), p99: percentile(all, 0.99), recentP50, baselineP50, regression };
  });
}
