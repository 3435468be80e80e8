import { describe, expect, it } from "vitest";
import { Scheduler } from "../../runtime/scheduler/scheduler.ts";
import { gpu, placed, run, stage } from "./helpers.ts";

// A worker's node lost in cluster mode takes its GPUs out of service until the worker is back.
describe("GPUs out of service", () => {
  const twoNodes = () => new Scheduler({ gpus: [gpu("a0", "na", 24), gpu("b0", "nb", 24)] });

  it("places nothing on a GPU out of service, and uses it again once it is back", () => {
    const s = twoNodes();
    expect(s.setOnline(0, false)).toBe(true);
    expect(s.setOnline(0, false)).toBe(false);
    s.submit(run("r1", [stage("x", 10)]), 0);
    s.submit(run("r2", [stage("y", 10)]), 0);
    const first = placed(s.schedule(0));
    expect(first.map((p) => p.gpuIds)).toEqual([["b0"]]);
    expect(placed(s.schedule(1))).toEqual([]);
    s.setOnline(0, true);
    expect(placed(s.schedule(2)).map((p) => p.gpuIds)).toEqual([["a0"]]);
  });

  it("requeues an interrupted stage without using up an attempt, and keeps the lost GPU's slot held", () => {
    const s = new Scheduler({ gpus: [gpu("a0", "na", 24), gpu("b0", "nb", 24)], maxAttempts: 1 });
    s.submit(run("r", [stage("x", 10, { model: "sdxl" })]), 0);
    const [p] = placed(s.schedule(0));
    const lost = p!.gpus[0]!;
    s.setOnline(lost, false);
    // With one attempt allowed, a failure would fail the run: an interruption must not.
    expect(s.finished("r", "x", 1, "interrupted")).toBe("running");
    const again = placed(s.schedule(2));
    expect(again).toHaveLength(1);
    expect(again[0]!.gpus).toEqual([1 - lost]);
    // The lost GPU's model went with its node: it is not resident there any more.
    expect(s.residentModels(lost)).toEqual([]);
    expect(s.isOnline(lost)).toBe(false);
    expect(s.finished("r", "x", 3, "succeeded")).toBe("succeeded");
  });
});
