import { describe, expect, it } from "vitest";
import { buildDag, criticalPath, upwardRank, type Dag } from "../../runtime/scheduler/dag.ts";
import { listSchedule, planRun } from "../../runtime/scheduler/planner.ts";
import { stage } from "./helpers.ts";

const dagOf = (spec: Record<string, string[]>): Dag => buildDag(Object.entries(spec).map(([id, needs]) => stage(id, 1, { needs }))) as Dag;

describe("DAG helpers", () => {
  it("computes upward rank and the critical path", () => {
    const dag = dagOf({ a: [], b: ["a"], c: ["a"], d: ["b", "c"] });
    const cost = [1, 5, 2, 1];
    expect(upwardRank(dag, cost)).toEqual([7, 6, 3, 1]);
    expect(criticalPath(dag, cost)).toBe(7);
  });
});

describe("list schedules and planning ahead", () => {
  it("schedules a hand-checked DAG on 2 machines", () => {
    // a(3) and b(1) are roots; c(3) needs b. Rank: a 3, b 4, c 3. b first, then a; c after b.
    const dag = dagOf({ a: [], b: [], c: ["b"] });
    const s = listSchedule(dag, [3, 1, 3], upwardRank(dag, [3, 1, 3]), 2);
    expect(Array.from(s.start)).toEqual([0, 0, 1]);
    expect(s.makespan).toBe(4);
  });

  it("finds a plan no longer than HEFT's, and its priorities replay the plan", () => {
    // A case where plain upward rank is not optimal on 2 machines.
    const dag = dagOf({ x: [], y: [], z: [], w: ["x"], v: ["y"] });
    const durations = [2, 2, 3, 2, 2];
    const heft = listSchedule(dag, durations, upwardRank(dag, durations), 2).makespan;
    const plan = planRun(dag, durations, 2, { budget: 200, seed: 7 });
    expect(plan.makespan).toBeLessThanOrEqual(heft);
    expect(listSchedule(dag, durations, plan.priority, 2).makespan).toBe(plan.makespan);
    // The lower bound: total work 11 on 2 machines.
    expect(plan.makespan).toBeGreaterThanOrEqual(5.5);
    expect(planRun(dag, durations, 2, { budget: 200, seed: 7 })).toEqual(plan);
  });
});
