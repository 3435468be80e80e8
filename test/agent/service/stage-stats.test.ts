/** Stage duration statistics: true percentiles, and the regression rule's edges. */
import { describe, expect, it } from "vitest";
import { percentile, stageStats } from "../../../runtime/agent/service/stage-stats.ts";
import type { WorkflowRunTimes } from "../../../runtime/agent/store/types.ts";

/** Runs newest first, each with one "work" stage of the given seconds (and "other" where given). */
const runs = (work: number[], other?: number[]): WorkflowRunTimes[] =>
  work.map((seconds, i) => ({
    runId: `r${i}`,
    status: "succeeded",
    createdAt: new Date(Date.UTC(2026, 0, 1) - i * 1000).toISOString(),
    stages: [{ stageId: "work", seconds }, ...(other ? [{ stageId: "other", seconds: other[i]! }] : [])],
  }));

describe("percentile", () => {
  it("is the mean of the two middle values for the median of an even count, the middle one for an odd count", () => {
    expect(percentile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(percentile([5, 1, 3], 0.5)).toBe(3);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNull();
  });

  it("interpolates between the closest ranks: p90 of 1..10 is 9.1, p99 is 9.91", () => {
    const values = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(percentile(values, 0.9)).toBeCloseTo(9.1, 10);
    expect(percentile(values, 0.99)).toBeCloseTo(9.91, 10);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile(values, 1)).toBe(10);
  });
});

describe("stageStats", () => {
  it("flags a stage whose last 10 runs' median is at least 1.25x the median of the runs before", () => {
    // 10 recent runs at 1.25 s, 5 baseline runs at 1 s: exactly at the threshold.
    const [work] = stageStats(runs([...Array(10).fill(1.25), ...Array(5).fill(1)]));
    expect(work).toMatchObject({ stageId: "work", count: 15, recentP50: 1.25, baselineP50: 1, regression: true });
  });

  it("does not flag just under the threshold, nor with fewer than 5 runs on either side", () => {
    expect(stageStats(runs([...Array(10).fill(1.24), ...Array(5).fill(1)]))[0]!.regression).toBe(false);
    // Four baseline runs: too few, however much slower the recent ones are.
    expect(stageStats(runs([...Array(10).fill(9), ...Array(4).fill(1)]))[0]).toMatchObject({ baselineP50: 1, regression: false });
    // Recent means the workflow's last 10 runs: a stage that ran in only 4 of them is not judged.
    const sparse: WorkflowRunTimes[] = runs([...Array(10).fill(9), ...Array(6).fill(1)]).map((r, i) => (i < 10 && i % 2 === 0 ? r : i < 10 ? { ...r, stages: [] } : r));
    expect(stageStats(sparse)[0]).toMatchObject({ count: 11, recentP50: 9, baselineP50: 1, regression: true });
    const fewer = sparse.map((r, i) => (i === 0 ? { ...r, stages: [] } : r));
    expect(stageStats(fewer)[0]).toMatchObject({ count: 10, regression: false });
  });

  it("keeps stages apart, in the order they first appear", () => {
    const stats = stageStats(runs([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1], Array(15).fill(2)));
    expect(stats.map((s) => [s.stageId, s.regression])).toEqual([
      ["work", true],
      ["other", false],
    ]);
    expect(stats[1]).toMatchObject({ p50: 2, p90: 2, p99: 2, recentP50: 2, baselineP50: 2 });
    expect(stageStats([])).toEqual([]);
  });
});
