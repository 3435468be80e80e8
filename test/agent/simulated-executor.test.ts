import { describe, expect, it } from "vitest";
import { ProcessExecutor, SimulatedExecutor, executorFor, type AttemptSpec } from "../../runtime/agent/executors/index.ts";
import type { Stage } from "../../runtime/graph/model.ts";

function attempt(stage: Stage): AttemptSpec {
  return { attemptId: "a1", runId: "r1", stageId: stage.id, number: 1, stage, gpus: [{ id: "sim-0", uuid: null, simulated: true }], inputs: [] };
}

const comfyStage: Stage = { id: "ksampler", needs: [], resources: { gpus: 1, vramMiB: 8000 }, estimate: { durationS: 12, modelLoadS: 3 } };

describe("SimulatedExecutor", () => {
  it("waits the estimated duration (work plus model load), scaled, and labels the outcome simulated", async () => {
    const executor = new SimulatedExecutor({ timeScale: 0.001 });
    expect(executor.durationS(attempt(comfyStage))).toBeCloseTo(0.015, 10);
    const running = await executor.start(attempt(comfyStage));
    expect(running.pid).toBeNull();
    const outcome = await running.done;
    expect(outcome).toMatchObject({ reason: "completed", exitCode: 0, simulated: true });
    expect(outcome.message).toMatch(/simulated.*no real work/);
    expect(outcome.peakVramMiB).toBeUndefined();
    expect(await running.commitOutputs()).toEqual([]);
  });

  it("uses the default duration for a stage without an estimate", () => {
    const executor = new SimulatedExecutor({ timeScale: 0.5, defaultDurationS: 4 });
    expect(executor.durationS(attempt({ ...comfyStage, estimate: undefined }))).toBe(2);
  });

  it("stops on cancel and commits nothing", async () => {
    const running = await new SimulatedExecutor({ timeScale: 1000 }).start(attempt(comfyStage));
    running.cancel();
    expect(await running.done).toMatchObject({ reason: "cancelled", simulated: true });
    await expect(running.commitOutputs()).rejects.toThrow(/nothing to commit/);
  });

  it("refuses a nonsensical time scale", () => {
    expect(() => new SimulatedExecutor({ timeScale: -1 })).toThrow(/timeScale/);
    expect(() => new SimulatedExecutor({ timeScale: Number.NaN })).toThrow(/timeScale/);
  });
});

describe("executorFor", () => {
  it("runs stages with a command as processes and simulates the others", () => {
    const executors = { process: new ProcessExecutor({ dataDir: "/nonexistent" }), simulated: new SimulatedExecutor() };
    expect(executorFor(comfyStage, executors).kind).toBe("simulated");
    expect(executorFor({ ...comfyStage, run: { command: ["render"], env: {} } }, executors).kind).toBe("process");
  });
});
