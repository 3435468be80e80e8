import { describe, expect, it } from "vitest";
import { buildDag } from "../../runtime/scheduler/dag.ts";
import { Scheduler } from "../../runtime/scheduler/scheduler.ts";
import type { FieldIssue } from "../../runtime/config/errors.ts";
import type { StageSpec } from "../../runtime/scheduler/types.ts";
import { gpu, placed, run, stage } from "./helpers.ts";

// submit builds small runs' DAGs (up to 16 stages) on its own and larger ones through buildDag: both
// must reject with the issue written out below (by hand, from the validation rules, not from buildDag)
// and accept with the same links and ranks as an independent recursive upward rank.
describe.each([5, 16, 17, 40])("submit on a run of %i stages", (n) => {
  const scheduler = () => new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0 } });
  // A fan-in: stage k needs k-1 and k/2 (a need given twice once), durations vary so ranks differ.
  const dag = (): StageSpec[] =>
    Array.from({ length: n }, (_, i) =>
      stage(`s${i}`, 1, { durationS: 1 + ((i * 37) % 11), modelLoadS: i % 3, needs: i === 0 ? [] : [`s${i - 1}`, `s${Math.floor(i / 2)}`, `s${i - 1}`] }),
    );
  const rejected = (field: string, message: string) => ({ accepted: false, field, message });
  // s0 needing the last stage closes the chain s0 → s1 → … → s(n-1) → s0: every stage is on it, the message names the first five.
  const cycleIds = Array.from({ length: Math.min(n, 5) }, (_, i) => `s${i}`).join(", ") + (n > 5 ? ", …" : "");
  const malformed: [string, (stages: StageSpec[]) => void, ReturnType<typeof rejected>][] = [
    ["a duplicate id", (st) => (st[n - 1] = { ...st[n - 1]!, id: "s1" }), rejected(`stages[${n - 1}].id`, "duplicate stage id 's1': ids must be unique within a run")],
    ["an unknown need", (st) => (st[n - 2] = { ...st[n - 2]!, needs: ["s0", "nope"] }), rejected(`stages[${n - 2}].needs[1]`, "unknown stage 'nope': name a stage of the same run")],
    ["a stage that needs itself", (st) => (st[2] = { ...st[2]!, needs: ["s2"] }), rejected("stages[2].needs[0]", "stage 's2' needs itself: remove it")],
    ["a cycle", (st) => (st[0] = { ...st[0]!, needs: [`s${n - 1}`] }), rejected("stages", `the needs form a cycle through ${cycleIds}: a stage cannot wait on itself`)],
  ];

  it.each(malformed)("rejects %s with the first issue, naming the field", (_, spoil, expected) => {
    const stages = dag();
    spoil(stages);
    expect(scheduler().submit(run("r", stages), 0)).toEqual(expected);
    // buildDag (the agent's validation) says the same first.
    expect((buildDag(stages) as FieldIssue[])[0]).toEqual({ field: expected.field, message: expected.message });
  });

  it("waits on each parent once, in the order of needs", () => {
    const s = scheduler();
    expect(s.submit(run("r", dag()), 0)).toEqual({ accepted: true });
    expect(s.explain("r", `s${n - 1}`)).toEqual({ code: "dependencies", pending: [`s${n - 2}`, `s${Math.floor((n - 1) / 2)}`] });
  });

  it("runs the stages in upward-rank order, children after parents", () => {
    const stages = dag().map((st, i) => (i === 0 ? st : { ...st, needs: [`s${Math.floor((i - 1) / 3)}`] }));
    const rank = recursiveRank(stages);
    const s = scheduler();
    s.submit(run("r", stages), 0);
    const done = new Set<number>();
    const order: number[] = [];
    for (let t = 0; order.length < n; t++) {
      const p = placed(s.schedule(t));
      expect(p).toHaveLength(1);
      const i = Number(p[0]!.stageId.slice(1));
      // Of the stages ready now (parents done), the one placed has the highest rank.
      const ready = stages.map((_, k) => k).filter((k) => !done.has(k) && stages[k]!.needs.every((id) => done.has(Number(id.slice(1)))));
      expect(rank[i]).toBe(Math.max(...ready.map((k) => rank[k]!)));
      order.push(i);
      done.add(i);
      s.finished("r", p[0]!.stageId, t + 1, "succeeded");
    }
  });
});

/** Upward rank by its definition, recursively over the needs: a stage's cost plus the largest rank among the stages that need it. */
function recursiveRank(stages: readonly StageSpec[]): number[] {
  const memo = new Map<string, number>();
  const rank = (id: string): number => {
    if (!memo.has(id)) {
      const own = stages.find((st) => st.id === id)!;
      const below = stages.filter((st) => st.needs.includes(id)).map((st) => rank(st.id));
      memo.set(id, own.durationS + own.modelLoadS + Math.max(0, ...below));
    }
    return memo.get(id)!;
  };
  return stages.map((st) => rank(st.id));
}

describe("submit's validation", () => {
  it("reports the first issue only, in the order id, tenant, priority, stages", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], tenants: [{ name: "t", weight: 1, gpuQuota: 1 }] });
    expect(s.submit({ ...run("", [stage("a", 1)]), tenant: "x" }, 0)).toMatchObject({ field: "id" });
    expect(s.submit({ ...run("r", [stage("a", 1)]), tenant: "x", priority: "soon" as never }, 0)).toMatchObject({ field: "tenant" });
    expect(s.submit({ ...run("r", []), priority: "soon" as never }, 0)).toMatchObject({ field: "priority" });
    const quota = s.submit(run("r", [stage("a", 1), stage("b", 1, { gpus: 2, durationS: -1 }), stage("c", 1, { gpus: 2 })]), 0);
    expect(quota).toEqual({ accepted: false, field: "stages[1].durationS", message: "must be a non-negative number of seconds (got -1)", stageId: "b" });
  });
});

describe("submit's room check", () => {
  // n0: one 80 GiB and one 48 GiB GPU; n1: two 48 GiB GPUs (no headroom).
  const s = new Scheduler({ gpus: [gpu("a", "n0", 80), gpu("b", "n0", 48), gpu("c", "n1", 48), gpu("d", "n1", 48)], settings: { headroomMiB: 0 } });
  const verdict = (id: string, gpus: number, vramGiB: number) => s.submit(run(id, [stage("x", vramGiB, { gpus })]), 0).accepted;

  it("accepts a stage some node has room for, on that many of its GPUs", () => {
    expect(verdict("one-large", 1, 80)).toBe(true);
    expect(verdict("two-mid", 2, 48)).toBe(true);
  });

  it("rejects a stage no single node has room for, even when GPUs of several nodes together would", () => {
    expect(verdict("one-too-large", 1, 81)).toBe(false);
    expect(verdict("two-large", 2, 49)).toBe(false);
    expect(verdict("three", 3, 1)).toBe(false);
  });
});
