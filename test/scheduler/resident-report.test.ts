import { describe, expect, it } from "vitest";
import { Scheduler } from "../../runtime/scheduler/scheduler.ts";
import { GiB, gpu, placed, run, stage } from "./helpers.ts";

// A ComfyUI server says which models it holds after each prompt; one that restarted holds none.
describe("forgetResidentExcept: what a GPU's model server reports it holds", () => {
  const m = (id: string, model: string) => stage(id, 8, { model, modelMiB: 8 * GiB, modelLoadS: 5 });

  it("forgets idle models the server no longer holds, so the next stage of that model is not placed for affinity that is gone", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 24), gpu("g1", "n0", 24)], settings: { headroomMiB: 0 } });
    s.submit(run("a", [m("s", "sdxl")]), 0);
    const first = placed(s.schedule(0))[0]!;
    const gpuIndex = first.gpus[0]!;
    s.finished("a", "s", 1, "succeeded");
    expect(s.residentModels(gpuIndex)).toEqual(["sdxl"]);

    // Still held: nothing changes.
    expect(s.forgetResidentExcept(first.gpuIds[0]!, ["sdxl"])).toEqual([]);
    expect(s.residentModels(gpuIndex)).toEqual(["sdxl"]);
    // The server restarted: it holds nothing, and the scheduler no longer counts on it.
    expect(s.forgetResidentExcept(first.gpuIds[0]!, [])).toEqual(["sdxl"]);
    expect(s.residentModels(gpuIndex)).toEqual([]);
    s.submit(run("b", [m("s", "sdxl")]), 2);
    const again = placed(s.schedule(2))[0]!;
    expect(again.reason).toMatchObject({ residentModel: false, modelLoadS: 5 });
  });

  it("keeps a model a running stage uses, and ignores unknown GPUs", () => {
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 24)], settings: { headroomMiB: 0 } });
    s.submit(run("a", [m("s", "sdxl")]), 0);
    placed(s.schedule(0));
    expect(s.forgetResidentExcept("g0", [])).toEqual([]);
    expect(s.residentModels(0)).toEqual(["sdxl"]);
    expect(s.forgetResidentExcept("no-such-gpu", [])).toEqual([]);
  });
});
