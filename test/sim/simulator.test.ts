import { describe, expect, it } from "vitest";
import { parsePoolSpec } from "../../runtime/scheduler/inventory.ts";
import type { RunSpec, StageSpec } from "../../runtime/scheduler/types.ts";
import { createPolicy } from "../../runtime/sim/policies.ts";
import { simulate } from "../../runtime/sim/simulator.ts";
import type { Workload } from "../../runtime/sim/workload.ts";
import { studioMixedWorkload } from "../../runtime/sim/workloads/studio-mixed.ts";

const GiB = 1024;
const stage = (id: string, vramGiB: number, extra: Partial<StageSpec> = {}): StageSpec => ({ id, needs: [], gpus: 1, vramMiB: vramGiB * GiB, durationS: 10, modelLoadS: 0, ...extra });

function workload(runs: { at: number; run: RunSpec }[], pool: string, tenants = [{ name: "t", weight: 1 }]): Workload {
  return { name: "test", gpus: parsePoolSpec(pool), tenants, arrivals: runs, noise: 0, settings: { headroomMiB: 0 } };
}

describe("weighted fair share", () => {
  it("gives weights 2:1 about 2:1 GPU-seconds while both tenants wait", () => {
    const runs: { at: number; run: RunSpec }[] = [];
    for (let i = 0; i < 300; i++) {
      for (const tenant of ["heavy", "light"]) runs.push({ at: 0, run: { id: `${tenant}-${i}`, tenant, priority: "batch", stages: [stage("s", 10)] } });
    }
    const w = workload(runs, "6xH100-80", [{ name: "heavy", weight: 2 }, { name: "light", weight: 1 }]);
    const { row, details } = simulate(w, createPolicy("gpufabric", w, 1), { seed: 1 });
    const heavy = details.saturatedGpuSeconds.heavy!;
    const light = details.saturatedGpuSeconds.light!;
    expect(details.saturatedSeconds).toBeGreaterThan(0);
    expect(heavy / light).toBeGreaterThan(1.9);
    expect(heavy / light).toBeLessThan(2.1);
    expect(row.jain_fairness!).toBeGreaterThan(0.99);
  });
});

describe("baselines", () => {
  it("naive-stage overcommits VRAM and gets OOM failures where gpufabric gets none", () => {
    const runs = Array.from({ length: 8 }, (_, i) => ({ at: 0, run: { id: `r${i}`, tenant: "t", priority: "batch" as const, stages: [stage("big", 60)] } }));
    const w = workload(runs, "2xH100-80,2xA10G-24");
    const naive = simulate(w, createPolicy("naive-stage", w, 1), { seed: 1 });
    const ours = simulate(w, createPolicy("gpufabric", w, 1), { seed: 1 });
    expect(naive.row.oom_events).toBeGreaterThan(0);
    expect(naive.details.runsCompleted).toBe(8);
    expect(ours.row.oom_events).toBe(0);
    expect(ours.details.runsCompleted).toBe(8);
  });

  it("fifo-job runs a workflow's stages in order on one GPU; stage-level runs its parallel stages at once", () => {
    const stages = [stage("a", 10), stage("b", 10), stage("c", 10), stage("d", 10, { needs: ["a", "b", "c"] })];
    const w = workload([{ at: 0, run: { id: "r", tenant: "t", priority: "batch", stages } }], "4xH100-80");
    expect(simulate(w, createPolicy("fifo-job", w, 1), { seed: 1 }).row.makespan_s).toBe(40);
    expect(simulate(w, createPolicy("fifo-stage", w, 1), { seed: 1 }).row.makespan_s).toBe(20);
    expect(simulate(w, createPolicy("gpufabric", w, 1), { seed: 1 }).row.makespan_s).toBe(20);
  });

  it("counts a model load on first use per GPU only", () => {
    const m = (id: string) => stage(id, 10, { model: "sdxl", modelLoadS: 5 });
    const runs = [0, 100, 200].map((at, i) => ({ at, run: { id: `r${i}`, tenant: "t", priority: "batch" as const, stages: [m("s")] } }));
    const w = workload(runs, "1xH100-80");
    const { row } = simulate(w, createPolicy("gpufabric", w, 1), { seed: 1 });
    expect(row.model_loads).toBe(1);
    expect(row.makespan_s).toBe(210);
  });
});

describe("rejection at submission", () => {
  it("rejects a run with a stage no GPU holds, with the reason, instead of queueing it forever", () => {
    const w = workload([{ at: 0, run: { id: "r", tenant: "t", priority: "batch", stages: [stage("huge", 100)] } }], "2xA10G-24");
    const { details } = simulate(w, createPolicy("gpufabric", w, 1), { seed: 1 });
    expect(details.runsRejected).toBe(1);
    expect(details.rejections[0]).toMatchObject({ runId: "r", field: "stages[0].resources" });
    expect(details.rejections[0]!.message).toMatch(/needs 100 GiB/);
  });
});

describe("determinism", () => {
  it("gives the same results for the same seed, and different arrivals for another", () => {
    const once = (seed: number) => {
      const w = studioMixedWorkload(seed);
      return JSON.stringify(simulate(w, createPolicy("gpufabric", w, seed), { seed }));
    };
    const a = once(3);
    expect(once(3)).toBe(a);
    expect(once(4)).not.toBe(a);
  });
});
