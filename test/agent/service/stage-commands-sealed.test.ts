import { describe, expect, it } from "vitest";
import type { Stage, WorkflowGraph } from "../../../runtime/graph/model.ts";
import { COMMAND_IN_DOCUMENT, restoreStageRuns } from "../../../runtime/agent/service/sealed-fields.ts";

const resources = { gpus: 1, vramMiB: 1024, model: null } as unknown as Stage["resources"];
const real: Stage = { id: "gen", needs: [], resources, run: { command: ["python", "gen.py", "--prompt", "a secret prompt"], env: { SEED: "1" } } };
const stored: Stage = { ...real, run: { command: [COMMAND_IN_DOCUMENT], env: {} } };
const simulatedOnly: Stage = { id: "sim", needs: ["gen"], resources };
const graph = { name: "wf", format: "native", stages: [real, simulatedOnly] } as WorkflowGraph;

describe("stage commands kept only in the sealed document", () => {
  it("are restored from the opened document's graph, stage by stage", () => {
    expect(restoreStageRuns([stored, simulatedOnly], graph)).toEqual([real, simulatedOnly]);
  });

  it("leave a run unrunnable (undefined) when the document is unavailable or lacks the stage", () => {
    expect(restoreStageRuns([stored], undefined)).toBeUndefined();
    expect(restoreStageRuns([{ ...stored, id: "other" }], graph)).toBeUndefined();
    // Stages without a command need nothing from the document.
    expect(restoreStageRuns([simulatedOnly], undefined)).toEqual([simulatedOnly]);
  });
});
