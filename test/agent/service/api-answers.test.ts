/**
 * What the API answers a caller who got something wrong or asked for a count: the workflow catalog's stage
 * counts, every problem of an invalid submission (with did-you-mean), unknown and other tenants' workflows
 * told apart from neither, and an artifact name several stages wrote.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePlatformConfig } from "../../../runtime/config/index.ts";
import { CostModel } from "../../../runtime/graph/index.ts";
import { ApiError } from "../../../runtime/agent/service/api-error.ts";
import { parseConfigWorkflows, prepareRun, type SubmissionContext } from "../../../runtime/agent/service/submission.ts";
import { parsePoolSpec } from "../../../runtime/scheduler/inventory.ts";
import { txt2imgUpscale } from "../../graph/comfy-builders.ts";
import { platformConfig } from "../../policies/support/platform.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;

/** A platform whose tenant 'clinic' may run 'upscale' and 'contact', and tenant 'lab' only 'lab-secret'. */
function context(): SubmissionContext {
  const raw = platformConfig();
  const tenants = raw.tenants as Array<Record<string, unknown>>;
  raw.tenants = [...tenants, { ...tenants[0]!, name: "lab" }];
  raw.workflows = [
    { name: "upscale", format: "comfyui", priority: "batch", tenants: ["clinic"], document: txt2imgUpscale() },
    { name: "lab-secret", format: "comfyui", priority: "batch", tenants: ["lab"], document: txt2imgUpscale() },
  ];
  const config = parsePlatformConfig(raw);
  return { config, workflows: parseConfigWorkflows(config), gpus: parsePoolSpec("2xH100-80"), headroomMiB: 1024, costModel: new CostModel() };
}

function refusal(body: unknown, tenant = "clinic"): ApiError {
  try {
    prepareRun(body, tenant, undefined, context());
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  return expect.unreachable("the submission was accepted");
}

describe("a refused submission", () => {
  it("names every problem, in the message and as issues, not '(and 1 more problem)'", () => {
    const err = refusal({ workflowRef: "upscale", priority: "urgent", comfyuiMod: "whole-graph" });
    const body = err.body().error as { message: string; field?: string; issues?: Array<{ field: string; message: string }> };
    expect(body.message).not.toMatch(/more problem/);
    expect(body.issues).toHaveLength(2);
    expect(body.issues!.map((i) => i.field).sort()).toEqual(["comfyuiMod", "priority"]);
    for (const issue of body.issues!) expect(body.message).toContain(issue.message);
    // The first problem stays in `field`, as before.
    expect(body.field).toBe(body.issues![0]!.field);
  });

  it("offers did-you-mean for an unknown body field and an unknown workflowRef", () => {
    const field = refusal({ workflowRef: "upscale", comfyuiMod: "whole-graph" });
    expect(field.message).toMatch(/did you mean 'comfyuiMode'\?/);
    const ref = refusal({ workflowRef: "upscal" });
    expect(ref.code).toBe("unknown-workflow");
    expect(ref.message).toMatch(/did you mean 'upscale'\?/);
  });

  it("caps the list of problems of a large invalid document, saying how many it left out", () => {
    const stages = Array.from({ length: 30 }, (_, i) => ({ id: `s${i}`, resorces: { gpus: 1 } }));
    const err = refusal({ workflow: { apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "many" }, spec: { stages } } });
    const body = err.body().error as { message: string; issues?: unknown[] };
    expect(body.issues!.length).toBeGreaterThanOrEqual(30);
    expect(body.message).toMatch(/did you mean 'resources'\?/);
    expect(body.message).toMatch(/and \d+ more problems \(see issues\)/);
  });

  it("answers another tenant's workflow exactly as an unknown one, listing only the caller's workflows", () => {
    const unknown = refusal({ workflowRef: "no-such-workflow" });
    const foreign = refusal({ workflowRef: "lab-secret" });
    for (const err of [unknown, foreign]) {
      expect(err.status).toBe(400);
      expect(err.code).toBe("unknown-workflow");
      expect(err.message).not.toContain("lab-secret'?");
      expect(err.message).toContain("known: upscale");
    }
    expect(foreign.message.replace("lab-secret", "X")).toBe(unknown.message.replace("no-such-workflow", "X"));
    // The tenant it belongs to runs it.
    expect(prepareRun({ workflowRef: "lab-secret" }, "lab", undefined, context()).stages.length).toBeGreaterThan(0);
  });
});

describe("the agent's API", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let studio: ReturnType<typeof client>;
  beforeAll(async () => {
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 81_920 }] });
    // Add a 9-node ComfyUI workflow (2 segments) for both tenants and a workflow only 'rival' may run.
    const config = JSON.parse(readFileSync(platform.configFile, "utf8"));
    config.workflows.push(
      { name: "upscale", format: "comfyui", priority: "batch", tenants: ["studio", "rival"], document: txt2imgUpscale() },
      { name: "rival-only", format: "native", priority: "batch", tenants: ["rival"], document: sleepyWorkflow("rival-only", [{ id: "a", ms: 10 }]) }
    );
    writeFileSync(platform.configFile, JSON.stringify(config));
    agent = await startAgentProcess(platform);
    studio = client(agent.url, platform.tokens.studio!);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it("counts a ComfyUI workflow's schedulable stages in GET /v1/workflows, not its nodes", async () => {
    const answer = await studio.get("/v1/workflows");
    expect(answer.status).toBe(200);
    const byName = new Map(answer.body.workflows.map((w: { name: string; stages: number }) => [w.name, w.stages]));
    expect(byName.get("upscale")).toBe(2);
    expect(byName.get("contact-sheet")).toBe(10);
    expect(byName.has("rival-only")).toBe(false);
  });

  it("answers another tenant's workflowRef with the unknown-workflow 400, never 403", async () => {
    const foreign = await studio.post("/v1/runs", { workflowRef: "rival-only" });
    const unknown = await studio.post("/v1/runs", { workflowRef: "nowhere" });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.code).toBe("unknown-workflow");
    expect(foreign.body.error.message.replace("rival-only", "X")).toBe(unknown.body.error.message.replace("nowhere", "X"));
    expect(unknown.body.error.message).toContain("known: contact-sheet, upscale");
  });

  it(
    "answers an artifact name several stages wrote with a 409 that names each stage and its URL",
    async () => {
      const write = `require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/same.png", "x")`;
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("twice", [{ id: "left", script: write }, { id: "right", script: write }]) });
      expect(submitted.status).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status).toBe("succeeded");
      const ambiguous = await studio.get(`/v1/runs/${run.id}/artifacts/same.png`);
      expect(ambiguous.status).toBe(409);
      expect(ambiguous.body.error.code).toBe("ambiguous-artifact");
      const message: string = ambiguous.body.error.message;
      for (const stage of ["left", "right"]) {
        const url = `/v1/runs/${run.id}/artifacts/same.png?stage=${stage}`;
        expect(message).toContain(url);
        expect((await studio.get(url)).status).toBe(200);
      }
    },
    TIMEOUT
  );
});
