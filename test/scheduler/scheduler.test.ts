import { describe, expect, it } from "vitest";
import { Scheduler } from "../../runtime/scheduler/scheduler.ts";
import { parsePoolSpec } from "../../runtime/scheduler/inventory.ts";
import { GiB, gpu, placed, run, stage, waiting } from "./helpers.ts";

describe("VRAM fit", () => {
  it("leaves a stage waiting, with the numbers, when no GPU has room, and places it once room frees", () => {
    // One 24 GiB GPU shared by two stages (time-slicing), 1 GiB headroom: 23 GiB usable.
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 24, 2)], settings: { headroomMiB: GiB } });
    s.submit(run("a", [stage("big", 20)]), 0);
    s.submit(run("b", [stage("small", 10)]), 0);
    const first = s.schedule(0);
    expect(placed(first).map((p) => p.runId)).toEqual(["a"]);
    const wait = waiting(first).find((w) => w.runId === "b")!;
    expect(wait.reason).toEqual({ code: "no-fit", needMiB: 10 * GiB, bestAvailableMiB: 3 * GiB, largestGpuMiB: 23 * GiB, freeGpus: 1 });
    expect(s.explain("b", "small")).toMatchObject({ code: "no-fit", needMiB: 10 * GiB });
    s.finished("a", "big", 10, "succeeded");
    expect(placed(s.schedule(10)).map((p) => p.runId)).toEqual(["b"]);
  });

  it("rejects at submission a stage no GPU could ever hold, naming the stage and the field", () => {
    const s = new Scheduler({ gpus: parsePoolSpec("2xH100-80,4xA10G-24"), settings: { headroomMiB: GiB } });
    const result = s.submit(run("r", [stage("ok", 10), stage("huge", 100)]), 0);
    expect(result.accepted).toBe(false);
    if (result.accepted) return;
    expect(result.field).toBe("stages[1].resources");
    expect(result.stageId).toBe("huge");
    expect(result.message).toMatch(/needs 100 GiB but the largest GPU offers 79 GiB/);
    // Nothing of the rejected run is queued.
    expect(placed(s.schedule(0))).toEqual([]);
  });

  it("rejects a gang larger than any node at submission", () => {
    const s = new Scheduler({ gpus: parsePoolSpec("2x4xH100-80") });
    const result = s.submit(run("r", [stage("gang", 40, { gpus: 6 })]), 0);
    expect(result).toMatchObject({ accepted: false, field: "stages[0].resources" });
  });

  it("rejects malformed runs with the field at fault", () => {
    const s = new Scheduler({ gpus: parsePoolSpec("1xH100-80") });
    expect(s.submit(run("r", [stage("a", 10, { needs: ["b"] }), stage("b", 10, { needs: ["a"] })]), 0)).toMatchObject({ accepted: false, field: "stages" });
    expect(s.submit(run("r2", [stage("a", 10, { needs: ["nope"] })]), 0)).toMatchObject({ accepted: false, field: "stages[0].needs[0]" });
    expect(s.submit(run("r3", [stage("a", -1)]), 0)).toMatchObject({ accepted: false, field: "stages[0].vramMiB" });
    expect(s.submit(run("r4", []), 0)).toMatchObject({ accepted: false, field: "stages" });
  });
});

describe("gang placement", () => {
  it("is all or nothing on one node", () => {
    // Two nodes of 4 GPUs, all busy; then 1 frees on node 0 and 2 on node 1: 3 GPUs are free, but no node has 3.
    const s = new Scheduler({ gpus: parsePoolSpec("2x4xH100-80"), settings: { headroomMiB: 0 } });
    for (let f = 0; f < 8; f++) s.submit(run(`f${f}`, [stage("s", 10)]), 0);
    const fill = placed(s.schedule(0));
    expect(fill).toHaveLength(8);
    const onNode = (node: string) => fill.filter((p) => p.gpuIds[0]!.startsWith(`${node}-`));
    const n0 = onNode("h100-80-n0");
    const n1 = onNode("h100-80-n1");
    expect([n0.length, n1.length]).toEqual([4, 4]);
    s.finished(n0[0]!.runId, "s", 1, "succeeded");
    s.finished(n1[0]!.runId, "s", 1, "succeeded");
    s.finished(n1[1]!.runId, "s", 1, "succeeded");
    s.submit(run("gang", [stage("g", 40, { gpus: 3 })]), 1);
    const d = s.schedule(1);
    expect(placed(d)).toEqual([]);
    expect(waiting(d)[0]!.reason).toMatchObject({ code: "gang", gpus: 3, bestNodeFitting: 2 });
    // One more GPU frees on node 1: the gang gets 3 GPUs there, all on that node.
    s.finished(n1[2]!.runId, "s", 2, "succeeded");
    const g = placed(s.schedule(2));
    expect(g).toHaveLength(1);
    expect(g[0]!.gpuIds).toHaveLength(3);
    expect(new Set(g[0]!.gpuIds.map((id) => id.split("-g")[0]))).toEqual(new Set(["h100-80-n1"]));
  });

  it("keeps the node it reserved for a waiting interactive gang from later stages of the same level", () => {
    // A node of 2 H100s, both busy, and a free A10G too small for the work. A gang of 2 waits at the
    // interactive level ahead of interactive 1-GPU stages: an H100 that frees stays free for the gang.
    const s = new Scheduler({ gpus: parsePoolSpec("1x2xH100-80,1x1xA10G-24"), settings: { headroomMiB: 0 } });
    s.submit(run("f0", [stage("s", 40)], { priority: "interactive" }), 0);
    s.submit(run("f1", [stage("s", 40)], { priority: "interactive" }), 0);
    expect(placed(s.schedule(0))).toHaveLength(2);
    s.submit(run("gang", [stage("g", 40, { gpus: 2 })], { priority: "interactive" }), 1);
    for (let k = 0; k < 3; k++) s.submit(run(`u${k}`, [stage("s", 40)], { priority: "interactive" }), 1);
    s.finished("f0", "s", 2, "succeeded");
    const d = s.schedule(2);
    expect(placed(d)).toEqual([]);
    expect(waiting(d).find((w) => w.runId === "gang")!.reason).toMatchObject({ code: "gang", gpus: 2, bestNodeFitting: 1 });
    expect(waiting(d).find((w) => w.runId === "u0")!.reason).toEqual({ code: "reserved", forStage: "gang/g" });
    s.finished("f1", "s", 3, "succeeded");
    expect(placed(s.schedule(3)).map((p) => p.runId)).toEqual(["gang"]);
  });
});

describe("priority", () => {
  it("lets an interactive stage overtake batch stages queued before it", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0 } });
    s.submit(run("batch", [stage("b1", 10), stage("b2", 10), stage("b3", 10)]), 0);
    expect(placed(s.schedule(0)).map((p) => p.stageId)).toEqual(["b1"]);
    s.submit(run("ui", [stage("i", 10)], { priority: "interactive" }), 1);
    expect(placed(s.schedule(1))).toEqual([]); // the batch stage is not stopped
    s.finished("batch", "b1", 10, "succeeded");
    const next = placed(s.schedule(10));
    expect(next.map((p) => `${p.runId}/${p.stageId}`)).toEqual(["ui/i"]);
    expect(next[0]!.reason.level).toBe("interactive");
  });

  it("follows critical-path rank inside a run", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0 } });
    // 'short' is a leaf; 'long' heads a chain of 100 s: the chain's head goes first.
    s.submit(run("r", [stage("short", 5, { durationS: 5 }), stage("long", 5, { durationS: 10 }), stage("tail", 5, { durationS: 90, needs: ["long"] })]), 0);
    expect(placed(s.schedule(0)).map((p) => p.stageId)).toEqual(["long"]);
  });

  it("lifts a waiting batch run by aging so a stream of interactive work cannot starve it", () => {
    const agingSeconds = 100;
    const placedBatchAt = (aging: number): number | null => {
      const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0, agingSeconds: aging } });
      s.submit(run("batch", [stage("b", 10)]), 0);
      s.submit(run("ui-0", [stage("i", 10)], { priority: "interactive" }), 0);
      let current = "ui-0";
      expect(placed(s.schedule(0))[0]!.runId).toBe("ui-0");
      for (let k = 1; k <= 10; k++) {
        const now = k * 50;
        s.finished(current, current === "batch" ? "b" : "i", now, "succeeded");
        s.submit(run(`ui-${k}`, [stage("i", 10)], { priority: "interactive" }), now);
        const p = placed(s.schedule(now))[0]!;
        if (p.runId === "batch") return now;
        current = p.runId;
      }
      return null;
    };
    // Twice the aging period lifts batch work to the interactive level, where it is older.
    expect(placedBatchAt(agingSeconds)).toBe(200);
    expect(placedBatchAt(1e9)).toBeNull();
  });
});

describe("model affinity and eviction", () => {
  it("places a stage where its model is resident instead of loading it elsewhere", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 24), gpu("g1", "n0", 24)], settings: { headroomMiB: 0 } });
    const withModel = (id: string) => stage(id, 12, { model: "sdxl", modelMiB: 7 * GiB, modelLoadS: 12 });
    s.submit(run("a", [stage("other", 12)]), 0);
    s.submit(run("b", [withModel("gen")]), 0);
    const first = placed(s.schedule(0));
    const sdxlGpu = first.find((p) => p.runId === "b")!.gpuIds[0]!;
    expect(first.find((p) => p.runId === "b")!.reason).toMatchObject({ residentModel: false, modelLoadS: 12 });
    s.finished("a", "other", 10, "succeeded");
    s.finished("b", "gen", 10, "succeeded");
    s.submit(run("c", [withModel("gen")]), 10);
    const again = placed(s.schedule(10))[0]!;
    expect(again.gpuIds[0]).toBe(sdxlGpu);
    expect(again.reason).toMatchObject({ residentModel: true, modelLoadS: 0, evicted: [] });
  });

  it("evicts least recently used models, and only when room is needed", () => {
    // 23 GiB usable. Models A and B (8 GiB each) stay resident after their stages.
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 24)], settings: { headroomMiB: GiB } });
    const m = (id: string, model: string, vram: number, modelGiB: number) => stage(id, vram, { model, modelMiB: modelGiB * GiB, modelLoadS: 5 });
    let t = 0;
    for (const [id, model, vram, weights] of [["a", "A", 8, 8], ["b", "B", 8, 8], ["c", "C", 6, 6]] as const) {
      s.submit(run(id, [m("s", model, vram, weights)]), t);
      const p = placed(s.schedule(t))[0]!;
      // A, B and C all fit beside what is resident: nothing is evicted.
      expect(p.evict).toEqual([]);
      t += 10;
      s.finished(id, "s", t, "succeeded");
    }
    expect(s.residentModels(0)).toEqual(["A", "B", "C"]);
    // D needs 12 GiB with 22 GiB resident: A (oldest) goes, then B; C, used last, stays.
    s.submit(run("d", [m("s", "D", 12, 4)]), t);
    const d = placed(s.schedule(t))[0]!;
    expect(d.evict.map((e) => e.model)).toEqual(["A", "B"]);
    expect(s.residentModels(0)).toEqual(["C", "D"]);
  });
});

describe("preemption", () => {
  const setup = (preemption: "stage-boundary" | "kill") => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0, preemption } });
    s.submit(run("batch", [stage("b1", 40), stage("b2", 40, { needs: ["b1"] })]), 0);
    expect(placed(s.schedule(0)).map((p) => p.stageId)).toEqual(["b1"]);
    s.submit(run("ui", [stage("i", 40)], { priority: "interactive" }), 1);
    return s;
  };

  it("waits for the stage boundary by default: nothing running is stopped", () => {
    const s = setup("stage-boundary");
    const d = s.schedule(1);
    expect(d.filter((x) => x.kind === "killed")).toEqual([]);
    expect(placed(d)).toEqual([]);
    s.finished("batch", "b1", 10, "succeeded");
    // At the boundary the interactive stage goes before the batch run's next stage.
    expect(placed(s.schedule(10)).map((p) => p.runId)).toEqual(["ui"]);
  });

  it("stops a running batch stage only under policy 'kill', and queues it again", () => {
    const s = setup("kill");
    const d = s.schedule(1);
    expect(d.filter((x) => x.kind === "killed")).toEqual([{ kind: "killed", runId: "batch", stageId: "b1", gpus: [0], forRunId: "ui", forStageId: "i" }]);
    expect(placed(d).map((p) => p.runId)).toEqual(["ui"]);
    s.finished("ui", "i", 11, "succeeded");
    expect(placed(s.schedule(11)).map((p) => p.stageId)).toEqual(["b1"]);
  });
});

describe("quotas", () => {
  it("holds a tenant at its GPU quota with a quota reason", () => {
    const s = new Scheduler({ gpus: parsePoolSpec("4xH100-80"), tenants: [{ name: "t", weight: 1, gpuQuota: 1 }], settings: { headroomMiB: 0 } });
    s.submit(run("a", [stage("x", 10)]), 0);
    s.submit(run("b", [stage("x", 10)]), 0);
    const d = s.schedule(0);
    expect(placed(d)).toHaveLength(1);
    expect(waiting(d)[0]!.reason).toEqual({ code: "quota", resource: "gpus", held: 1, requested: 1, quota: 1 });
  });

  it("rejects a run of a tenant the scheduler does not know", () => {
    const s = new Scheduler({ gpus: parsePoolSpec("1xH100-80"), tenants: [{ name: "t", weight: 1 }] });
    expect(s.submit({ ...run("a", [stage("x", 10)]), tenant: "other" }, 0)).toMatchObject({ accepted: false, field: "tenant" });
  });
});

describe("dependencies", () => {
  it("explains a stage waiting on its inputs", () => {
    const s = new Scheduler({ gpus: parsePoolSpec("1xH100-80") });
    s.submit(run("r", [stage("a", 10), stage("b", 10, { needs: ["a"] })]), 0);
    s.schedule(0);
    expect(s.explain("r", "b")).toEqual({ code: "dependencies", pending: ["a"] });
  });
});

describe("cancel", () => {
  it("takes a cancelled run's queued stages out: they are never placed, and its running stage ends as usual", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0 } });
    s.submit(run("a", [stage("a1", 10), stage("a2", 10), stage("a3", 10, { needs: ["a1"] })]), 0);
    s.submit(run("b", [stage("b1", 10)]), 1);
    expect(placed(s.schedule(1)).map((p) => `${p.runId}/${p.stageId}`)).toEqual(["a/a1"]);
    expect(s.cancel("a")).toBe(1);
    expect(s.explain("a", "a2")).toBeNull();
    expect(s.finished("a", "a1", 5, "succeeded")).toBe("failed");
    // Run a's other stages were ahead of b; after the cancel only b is placed, then nothing.
    expect(placed(s.schedule(5)).map((p) => `${p.runId}/${p.stageId}`)).toEqual(["b/b1"]);
    expect(s.finished("b", "b1", 6, "succeeded")).toBe("succeeded");
    expect(s.schedule(6)).toEqual([]);
  });

  it("forgets a cancelled run with nothing running at once, and ignores unknown runs", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0 } });
    s.submit(run("a", [stage("a1", 10)]), 0);
    expect(s.cancel("a")).toBe(0);
    expect(s.schedule(0)).toEqual([]);
    // Forgotten: the id may be used again.
    expect(s.submit(run("a", [stage("a1", 10)]), 1)).toEqual({ accepted: true });
    expect(s.cancel("nope")).toBe(0);
  });

  it("never wakes a forgotten run's queued stages when a later run's stages take over their ids", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0 } });
    s.submit(run("a", [stage("a1", 10), stage("a2", 10), stage("a3", 10)]), 0);
    // Forgotten at once (nothing of it runs); its stages' stale queue slots stay behind.
    expect(s.cancel("a")).toBe(0);
    s.submit(run("c", [stage("c1", 10), stage("c2", 10), stage("c3", 10)]), 1);
    const order: string[] = [];
    for (let t = 1; t < 10; t++) {
      const now = placed(s.schedule(t));
      for (const p of now) {
        order.push(`${p.runId}/${p.stageId}`);
        s.finished(p.runId, p.stageId, t + 0.5, "succeeded");
      }
    }
    expect(order).toEqual(["c/c1", "c/c2", "c/c3"]);
  });
});
