import { describe, expect, it } from "vitest";
import { Scheduler } from "../../runtime/scheduler/scheduler.ts";
import { gpu, placed, run, stage } from "./helpers.ts";

// A failed stage may back off before its next attempt: it waits without holding a GPU, other work runs.
describe("backoff after a failed attempt (finished with notBefore)", () => {
  it("does not place a requeued stage before its time, and places other work meanwhile on the GPU it left", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n", 24)] });
    s.submit(run("flaky", [stage("x", 10)]), 0);
    expect(placed(s.schedule(0)).map((p) => p.stageId)).toEqual(["x"]);
    expect(s.finished("flaky", "x", 5, "failed", { notBefore: 25 })).toBe("running");
    expect(s.explain("flaky", "x")).toEqual({ code: "backoff", until: 25 });

    // Another run arrives while x backs off: it gets the only GPU.
    s.submit(run("other", [stage("y", 10)]), 6);
    expect(placed(s.schedule(6)).map((p) => `${p.runId}/${p.stageId}`)).toEqual(["other/y"]);
    expect(s.finished("other", "y", 10, "succeeded")).toBe("succeeded");
    // The GPU is free now, but x's time has not come.
    expect(placed(s.schedule(24.9))).toEqual([]);
    expect(s.explain("flaky", "x")).toEqual({ code: "backoff", until: 25 });
    const again = placed(s.schedule(25));
    expect(again.map((p) => p.stageId)).toEqual(["x"]);
    expect(s.finished("flaky", "x", 30, "succeeded")).toBe("succeeded");
  });

  it("backs off a CPU-only stage too, and counts the failure against maxAttempts", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n", 24)], maxAttempts: 2 });
    s.submit(run("r", [stage("cpu", 0, { gpus: 0 })]), 0);
    expect(placed(s.schedule(0))).toHaveLength(1);
    expect(s.finished("r", "cpu", 1, "failed", { notBefore: 3 })).toBe("running");
    expect(placed(s.schedule(2))).toEqual([]);
    expect(placed(s.schedule(3))).toHaveLength(1);
    // The second failure uses up maxAttempts: the run fails, no backoff.
    expect(s.finished("r", "cpu", 4, "failed", { notBefore: 10 })).toBe("failed");
    expect(placed(s.schedule(20))).toEqual([]);
  });

  it("fails the run at once on a final failure, whatever maxAttempts allows", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n", 24)], maxAttempts: 10 });
    s.submit(run("r", [stage("a", 10), stage("b", 10, { needs: ["a"] })]), 0);
    placed(s.schedule(0));
    expect(s.finished("r", "a", 1, "failed", { final: true })).toBe("failed");
    expect(s.explain("r", "a")).toBeNull();
    expect(placed(s.schedule(2))).toEqual([]);
  });

  it("forgets a backing-off stage when its run is cancelled", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n", 24)] });
    s.submit(run("r", [stage("x", 10)]), 0);
    placed(s.schedule(0));
    s.finished("r", "x", 1, "failed", { notBefore: 5 });
    expect(s.cancel("r")).toBe(0);
    expect(placed(s.schedule(6))).toEqual([]);
    expect(s.explain("r", "x")).toBeNull();
  });

  it("releases stages in the order their waits end, and a notBefore already past queues at once", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n", 24), gpu("g1", "n", 24)] });
    s.submit(run("r", [stage("a", 10), stage("b", 10)]), 0);
    expect(placed(s.schedule(0))).toHaveLength(2);
    s.finished("r", "a", 1, "failed", { notBefore: 9 });
    s.finished("r", "b", 2, "failed", { notBefore: 4 });
    expect(placed(s.schedule(5)).map((p) => p.stageId)).toEqual(["b"]);
    expect(placed(s.schedule(9)).map((p) => p.stageId)).toEqual(["a"]);
    s.finished("r", "a", 10, "failed", { notBefore: 10 });
    expect(placed(s.schedule(10)).map((p) => p.stageId)).toEqual(["a"]);
  });

  it("holds a ready stage of a resumed run until its remaining backoff ends", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n", 24)] });
    s.submit(run("r", [stage("x", 10), stage("y", 10)]), 100);
    expect(s.holdUntil("r", "x", 130, 100)).toBe(true);
    // A time already past, or an unknown stage, holds nothing.
    expect(s.holdUntil("r", "y", 90, 100)).toBe(false);
    expect(s.holdUntil("r", "nope", 130, 100)).toBe(false);
    expect(placed(s.schedule(100)).map((p) => p.stageId)).toEqual(["y"]);
    s.finished("r", "y", 110, "succeeded");
    expect(placed(s.schedule(129))).toEqual([]);
    expect(s.explain("r", "x")).toEqual({ code: "backoff", until: 130 });
    expect(placed(s.schedule(130)).map((p) => p.stageId)).toEqual(["x"]);
  });
});
