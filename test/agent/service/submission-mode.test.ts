import { describe, expect, it } from "vitest";
import { parsePlatformConfig } from "../../../runtime/config/index.ts";
import { CostModel, WHOLE_GRAPH_STAGE_ID } from "../../../runtime/graph/index.ts";
import { restoreStageRuns } from "../../../runtime/agent/service/sealed-fields.ts";
import { ModelTags } from "../../../runtime/agent/service/model-tags.ts";
import { ApiError } from "../../../runtime/agent/service/api-error.ts";
import { parseConfigWorkflows, prepareRun, type SubmissionContext } from "../../../runtime/agent/service/submission.ts";
import { parsePoolSpec } from "../../../runtime/scheduler/inventory.ts";
import { txt2imgUpscale } from "../../graph/comfy-builders.ts";
import { platformConfig } from "../../policies/support/platform.ts";

type Mode = "segmented" | "whole-graph";

/** A platform with one ComfyUI workflow (two segments when split), its mode and the platform's as given. */
function context(workflowMode?: Mode, platformMode?: Mode): SubmissionContext {
  const raw = platformConfig();
  raw.workflows = [{ name: "upscale", format: "comfyui", priority: "batch", tenants: ["clinic"], document: txt2imgUpscale(), ...(workflowMode && { comfyuiMode: workflowMode }) }];
  if (platformMode) raw.comfyui = { mode: platformMode, servers: [{ gpu: "h100-n0-g0", url: "http://127.0.0.1:8188" }] };
  const config = parsePlatformConfig(raw);
  return { config, workflows: parseConfigWorkflows(config), gpus: parsePoolSpec("2xH100-80"), headroomMiB: 1024, costModel: new CostModel() };
}

const stageIds = (body: Record<string, unknown>, ctx: SubmissionContext) => prepareRun(body, "clinic", undefined, ctx).stages.map((s) => s.id);
const SEGMENTED = ["ksampler-1", "imageupscalewithmodel-7"];

describe("the ComfyUI mode of a submission", () => {
  it("is segmented by default", () => {
    expect(stageIds({ workflowRef: "upscale" }, context())).toEqual(SEGMENTED);
    expect(stageIds({ workflow: txt2imgUpscale() }, context())).toEqual(SEGMENTED);
  });

  it("follows the platform's comfyui.mode, then the workflow's comfyuiMode over it", () => {
    expect(stageIds({ workflowRef: "upscale" }, context(undefined, "whole-graph"))).toEqual([WHOLE_GRAPH_STAGE_ID]);
    expect(stageIds({ workflow: txt2imgUpscale() }, context(undefined, "whole-graph"))).toEqual([WHOLE_GRAPH_STAGE_ID]);
    expect(stageIds({ workflowRef: "upscale" }, context("whole-graph"))).toEqual([WHOLE_GRAPH_STAGE_ID]);
    expect(stageIds({ workflowRef: "upscale" }, context("segmented", "whole-graph"))).toEqual(SEGMENTED);
  });

  it("lets a run ask for its own mode in the body", () => {
    expect(stageIds({ workflowRef: "upscale", comfyuiMode: "whole-graph" }, context())).toEqual([WHOLE_GRAPH_STAGE_ID]);
    expect(stageIds({ workflow: txt2imgUpscale(), comfyuiMode: "whole-graph" }, context("segmented"))).toEqual([WHOLE_GRAPH_STAGE_ID]);
    expect(stageIds({ workflow: txt2imgUpscale(), comfyuiMode: "segmented" }, context(undefined, "whole-graph"))).toEqual(SEGMENTED);
    expect(stageIds({ workflowRef: "upscale", comfyuiMode: "segmented" }, context(undefined, "whole-graph"))).toEqual(SEGMENTED);
  });

  it("refuses to split a workflow declared whole-graph, and an unknown mode, naming the field", () => {
    const split = () => prepareRun({ workflowRef: "upscale", comfyuiMode: "segmented" }, "clinic", undefined, context("whole-graph"));
    expect(split).toThrow(ApiError);
    expect(split).toThrow(/comfyuiMode: workflow 'upscale' is declared whole-graph/);
    try {
      prepareRun({ workflowRef: "upscale", comfyuiMode: "split" }, "clinic", undefined, context());
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      expect((err as ApiError).message).toMatch(/comfyuiMode/);
    }
  });

  it("stores a whole-graph stage that a resumed run restores as it was, model name included", () => {
    const ctx = context("whole-graph");
    const prepared = prepareRun({ workflowRef: "upscale" }, "clinic", undefined, ctx);
    expect(prepared.newRun.stages).toHaveLength(1);
    expect(restoreStageRuns(prepared.stages, prepared.graph)).toEqual(prepared.stages);
    const tags = new ModelTags(Buffer.alloc(32, 7));
    const sealed = prepared.stages.map((s) => ({ ...s, resources: { ...s.resources, model: tags.tag(s.resources.model!) } }));
    expect(sealed[0]!.resources.model).not.toBe("sd_xl_base_1.0.safetensors");
    expect(restoreStageRuns(sealed, prepared.graph, tags)).toEqual(prepared.stages);
  });
});
