/**
 * ComfyUI stages in cluster mode: an assignment carries the prompt's nodes to the worker, and the
 * worker's report carries back the models its ComfyUI server holds, for the leader's scheduler.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { PoolConfig } from "../../../runtime/config/schema.ts";
import { parseWorkflow } from "../../../runtime/graph/index.ts";
import type { WorkerRegistry } from "../../../runtime/agent/cluster/registry.ts";
import { FinishedReportSchema } from "../../../runtime/agent/cluster/protocol.ts";
import type { AttemptSpec } from "../../../runtime/agent/executors/types.ts";
import { twoSegmentPrompt } from "../comfyui/fixtures.ts";
import { openRegistry, type RegistryHarness } from "./registry-fixture.ts";

const pool: PoolConfig = {
  name: "p",
  gpu: { model: "L4-24GB", product: "NVIDIA-L4", memoryMiB: 24_576 },
  nodes: 1,
  gpusPerNode: 1,
  sharing: { mode: "exclusive" },
  devices: [{ id: "n0-g0", node: "n0", index: 0, memoryMiB: 24_576 }],
  nodeSelector: {},
  priorityClasses: { interactive: "i", batch: "b" },
  tenantQuotas: {},
};

describe("the worker registry with ComfyUI stages", () => {
  let harness: RegistryHarness;
  let registry: WorkerRegistry;

  beforeEach(() => {
    harness = openRegistry({ prefix: "gpufabric-registry-comfy-", pool, epoch: 1 });
    registry = harness.registry;
  });
  afterEach(() => harness.close());

  it("hands the worker the prompt's nodes and returns the models its server holds", async () => {
    const nodes = parseWorkflow(twoSegmentPrompt()).comfyNodes!;
    const { workerId } = registry.register("worker-a", {
      protocol: 1,
      node: "n0",
      devices: [{ index: 0, uuid: null, name: "L4", memoryMiB: 24_576, simulated: true }],
      residentModels: [],
      isolation: { sandbox: "per-tenant", unsafe: false },
    });
    const spec: AttemptSpec = {
      attemptId: "att-1",
      runId: "run-1",
      tenant: "studio",
      stageId: "ksampler-3",
      number: 1,
      stage: { id: "ksampler-3", needs: [], resources: { gpus: 1, vramMiB: 2566 }, comfyNodes: ["3", "4", "5", "6", "7", "8"] },
      gpus: [{ id: "n0-g0", uuid: null, simulated: true }],
      inputs: [],
      comfy: { nodes },
    };
    const started = registry.assign(spec);
    const { assignments } = await registry.poll("worker-a", { workerId, running: [], waitMs: 2000 });
    const a = assignments[0]!;
    // What travels is JSON: the nodes arrive as the worker's executor needs them.
    expect(JSON.parse(JSON.stringify(a.comfy))).toEqual({ nodes: JSON.parse(JSON.stringify(nodes)) });
    registry.started("worker-a", "att-1", { workerId, token: a.token, pid: null, workspace: "/w" });
    const handle = await started;
    const report = FinishedReportSchema.parse({
      workerId,
      token: a.token,
      outcome: { exitCode: null, signal: null, reason: "completed", message: "ran", simulated: false, residentModels: ["v1-5-pruned-emaonly.safetensors"] },
      artifacts: [],
    });
    registry.finished("worker-a", "att-1", report);
    expect((await handle.done).residentModels).toEqual(["v1-5-pruned-emaonly.safetensors"]);
  });
});
