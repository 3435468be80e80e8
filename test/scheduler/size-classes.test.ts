import { describe, expect, it } from "vitest";
import { Scheduler } from "../../runtime/scheduler/scheduler.ts";
import { GiB, gpu, placed, run, stage } from "./helpers.ts";

// One GPU of each size: 24, 48 and 80 GiB, no headroom.
const pool = () => [gpu("small", "n0", 24), gpu("mid", "n0", 48), gpu("large", "n0", 80)];

describe("keeping larger GPUs for the stages that need them", () => {
  it("keeps free larger GPUs for waiting stages that need them", () => {
    const s = new Scheduler({ gpus: pool(), settings: { headroomMiB: 0 } });
    s.submit(run("hog", [stage("h", 20)]), 0);
    expect(placed(s.schedule(0)).map((p) => p.gpuIds)).toEqual([["small"]]);
    // 'tiny' goes first by rank, but the two free GPUs are both needed by larger stages.
    s.submit(run("r", [stage("tiny", 10, { durationS: 100 }), stage("mid-need", 40), stage("large-need", 70)]), 1);
    const ds = s.schedule(1);
    expect(Object.fromEntries(placed(ds).map((p) => [p.stageId, p.gpuIds]))).toEqual({ "mid-need": ["mid"], "large-need": ["large"] });
    expect(placed(ds).some((p) => p.stageId === "tiny")).toBe(false);
    // Once the larger stages run, nothing needs the larger GPUs: 'tiny' waits only for a GPU to free.
    s.finished("hog", "h", 10, "succeeded");
    expect(placed(s.schedule(10)).map((p) => [p.stageId, p.gpuIds])).toEqual([["tiny", ["small"]]]);
  });

  it("does not hold back a free mid-size GPU for stages that only the largest GPUs can take", () => {
    const s = new Scheduler({ gpus: pool(), settings: { headroomMiB: 0 } });
    s.submit(run("hog-large", [stage("h", 70)]), 0);
    s.submit(run("hog-small", [stage("h", 20)]), 0);
    expect(placed(s.schedule(0))).toHaveLength(2);
    // The 70 GiB stage waits for the busy 80 GiB GPU; the 48 GiB GPU is of no use to it.
    s.submit(run("big", [stage("b", 70)]), 1);
    s.submit(run("tiny", [stage("t", 10)]), 1);
    const ds = s.schedule(1);
    expect(placed(ds).map((p) => [p.runId, p.gpuIds])).toEqual([["tiny", ["mid"]]]);
    expect(s.explain("big", "b")).toMatchObject({ code: "no-fit", needMiB: 70 * GiB });
  });
});

describe("fresh batch work", () => {
  it("starts the run with the longest remaining path first, across runs", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0 } });
    s.submit(run("short", [stage("only", 10, { durationS: 5 })]), 0);
    s.submit(run("long", [stage("head", 10, { durationS: 10 }), stage("tail", 10, { durationS: 100, needs: ["head"] })]), 0);
    expect(placed(s.schedule(0)).map((p) => `${p.runId}/${p.stageId}`)).toEqual(["long/head"]);
  });

  it("goes back to run order once aged, so a short run submitted first is not passed for ever", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { headroomMiB: 0, agingSeconds: 60 } });
    s.submit(run("busy", [stage("x", 10, { durationS: 100 })]), 0);
    expect(placed(s.schedule(0))).toHaveLength(1);
    s.submit(run("short", [stage("only", 10, { durationS: 5 })]), 1);
    s.submit(run("long", [stage("head", 10, { durationS: 10 }), stage("tail", 10, { durationS: 100, needs: ["head"] })]), 2);
    s.finished("busy", "x", 100, "succeeded");
    // Both waited past the aging period: at the aged level the earlier run goes first.
    const next = placed(s.schedule(100));
    expect(next.map((p) => `${p.runId}/${p.stageId}`)).toEqual(["short/only"]);
    expect(next[0]!.reason).toMatchObject({ level: "batch-aged", aged: true });
  });
});

describe("one round", () => {
  it("does not examine again a stage that a smaller one of the same GPU count showed cannot fit, and still places smaller ones", () => {
    // One 24 GiB GPU shared by two stages; a 20 GiB stage leaves 4 GiB.
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 24, 2)], settings: { headroomMiB: 0 } });
    s.submit({ ...run("hog", [stage("h", 20)]), tenant: "h" }, 0);
    expect(placed(s.schedule(0))).toHaveLength(1);
    s.submit({ ...run("a", [stage("x", 10)]), tenant: "ta" }, 1);
    s.submit({ ...run("b", [stage("x", 12)]), tenant: "tb" }, 1);
    s.submit({ ...run("c", [stage("x", 3)]), tenant: "tc" }, 1);
    const ds = s.schedule(1);
    expect(ds.map((d) => `${d.kind}:${d.runId}`)).toEqual(["waiting:a", "placed:c"]);
    expect(s.explain("b", "x")).toMatchObject({ code: "no-fit", needMiB: 12 * GiB, bestAvailableMiB: 0 });
  });
});
