import { describe, expect, it } from "vitest";
import { checkTargets } from "../../bench/scheduler-targets.ts";
import { suiteSpreads } from "../../bench/scheduler-suites.ts";
import type { ResultRow } from "../../runtime/sim/simulator.ts";

const base: ResultRow = {
  workload: "",
  policy: "",
  makespan_s: null,
  lower_bound_s: null,
  best_known_s: null,
  interactive_p50_s: null,
  interactive_p99_s: null,
  batch_makespan_s: null,
  oom_events: 0,
  model_loads: 0,
  gpu_busy_pct: null,
  jain_fairness: null,
  decisions_per_s: null,
};
const studio = (policy: string, p99: number, batch: number, loads: number, oom: number, jain: number): ResultRow => ({
  ...base,
  workload: "studio-mixed",
  policy,
  makespan_s: batch,
  lower_bound_s: 50,
  interactive_p99_s: p99,
  batch_makespan_s: batch,
  model_loads: loads,
  oom_events: oom,
  jain_fairness: jain,
});
const wf = (instance: string, policy: string, makespan: number, lowerBound: number, bestKnown: number): ResultRow => ({
  ...base,
  workload: `wfcommons:${instance}`,
  policy,
  makespan_s: makespan,
  lower_bound_s: lowerBound,
  best_known_s: bestKnown,
});

describe("bench:scheduler's targets against every baseline", () => {
  // gpufabric meets every target against the baseline each names, yet fifo-stage comes close on batch
  // makespan, naive-stage beats it there, and fifo-job loads fewer models.
  const rows = [
    studio("gpufabric", 10, 100, 40, 0, 0.99),
    studio("fifo-job", 100, 200, 30, 0, 0.9),
    studio("fifo-stage", 60, 110, 100, 0, 0.995),
    studio("naive-stage", 80, 90, 120, 5, 0.95),
  ];
  const targets = checkTargets(rows, false);
  const byName = (prefix: string) => targets.find((t) => t.target.startsWith(prefix))!;

  it("keeps `met` as the target states it, and judges it again against each baseline with the same threshold", () => {
    const batch = byName("studio-mixed: batch makespan");
    expect(batch.met).toBe(true);
    expect(batch.vs).toEqual({ "fifo-job": 2, "fifo-stage": 1.1, "naive-stage": 0.9 });
    expect(batch.met_vs).toEqual({ "fifo-job": true, "fifo-stage": false, "naive-stage": false });
    const loads = byName("studio-mixed: model_loads");
    expect(loads.met).toBe(true);
    expect(loads.met_vs).toEqual({ "fifo-job": false, "fifo-stage": true, "naive-stage": true });
    const p99 = byName("studio-mixed: interactive_p99_s");
    expect(p99.vs).toEqual({ "fifo-job": 0.1, "fifo-stage": 0.167, "naive-stage": 0.125 });
    expect(p99.met_vs).toEqual({ "fifo-job": true, "fifo-stage": true, "naive-stage": true });
  });

  it("names the baselines that do better than gpufabric on a target's figure", () => {
    expect(byName("studio-mixed: batch makespan").beaten_by).toEqual(["naive-stage"]);
    expect(byName("studio-mixed: model_loads").beaten_by).toEqual(["fifo-job"]);
    expect(byName("studio-mixed: interactive_p99_s").beaten_by).toEqual([]);
    expect(byName("studio-mixed: jain_fairness").beaten_by).toEqual(["fifo-stage"]);
    expect(byName("studio-mixed: jain_fairness").met_vs).toEqual({ "fifo-job": true, "fifo-stage": false, "naive-stage": true });
    expect(byName("studio-mixed: oom_events").met_vs).toEqual({ "fifo-job": true, "fifo-stage": true, "naive-stage": true });
  });

  it("on WfCommons, counts a baseline's shorter schedule on any instance against the 1.02 x best-known target", () => {
    const wfRows = [
      wf("a", "gpufabric", 100, 100, 100),
      wf("b", "gpufabric", 120, 100, 118),
      ...["fifo-job", "fifo-stage"].flatMap((b) => [wf("a", b, 200, 100, 100), wf("b", b, 240, 100, 118)]),
      wf("a", "naive-stage", 100, 100, 100),
      wf("b", "naive-stage", 110, 100, 118),
    ];
    const [lb, best] = checkTargets(wfRows, false);
    // Medians of two: the mean of the two middle values.
    expect(lb!.spread).toEqual({ count: 2, p50: 1.1, p90: 1.2, max: 1.2 });
    expect(lb!.met).toBe(true);
    expect(best!.met).toBe(true);
    expect(best!.vs).toEqual({ "fifo-job": 0.5, "fifo-stage": 0.5, "naive-stage": 1.091 });
    expect(best!.met_vs).toEqual({ "fifo-job": true, "fifo-stage": true, "naive-stage": false });
    expect(best!.beaten_by).toEqual(["naive-stage"]);
    expect(best!.detail).toContain("naive-stage is shorter on wfcommons:b");
  });

  it("summarizes makespan / lower bound per suite and policy with true medians", () => {
    const spreads = suiteSpreads([wf("a", "gpufabric", 100, 100, 100), wf("b", "gpufabric", 130, 100, 118), studio("gpufabric", 1, 75, 1, 0, 1)]);
    expect(spreads).toEqual({
      wfcommons: { gpufabric: { count: 2, p50: 1.15, p90: 1.3, max: 1.3 } },
      "studio-mixed": { gpufabric: { count: 1, p50: 1.5, p90: 1.5, max: 1.5 } },
    });
  });
});
