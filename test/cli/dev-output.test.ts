/** `gpufabric dev`'s progress lines: finished stages and running ones are counted apart. */
import { describe, expect, it } from "vitest";
import { progressLine } from "../../cli/commands/dev.ts";

const run = (status: string, done: number, total: number) => ({ workflow: "contact-sheet", status, done, total });

describe("gpufabric dev progress lines", () => {
  it("say how many stages are done and how many run, and where", () => {
    expect(progressLine(run("running", 1, 10), { stages: 4, gpus: ["g1", "g2", "g3", "g4"] }, false)).toBe("contact-sheet: 1/10 stages done, 4 running on g1, g2, g3, g4");
    expect(progressLine(run("running", 5, 10), { stages: 1, gpus: ["g3"] }, true)).toBe("contact-sheet: 5/10 stages done, 1 running on g3 (simulated GPUs)");
  });

  it("name the run's state when no stage runs", () => {
    expect(progressLine(run("queued", 0, 10), { stages: 0, gpus: [] }, false)).toBe("contact-sheet: 0/10 stages done, queued");
    expect(progressLine(run("running", 9, 10), { stages: 0, gpus: [] }, false)).toBe("contact-sheet: 9/10 stages done, none running");
    expect(progressLine(run("succeeded", 10, 10), { stages: 0, gpus: [] }, false)).toBe("contact-sheet: 10/10 stages done, succeeded");
    expect(progressLine(run("failed", 3, 10), { stages: 0, gpus: [] }, false)).toBe("contact-sheet: 3/10 stages done, failed");
  });
});
