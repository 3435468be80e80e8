/** What a tenant may look at besides its runs: its workflows, the GPUs, its queue, and its metrics. */
import type { FastifyInstance } from "fastify";
import type { WaitReason } from "../../../scheduler/index.ts";
import { scheduledMiB } from "../../service/metrics.ts";
import { declaredStages } from "../../service/submission.ts";
import type { HttpParts } from "../parts.ts";
import { describeWait } from "../views.ts";

export function registerCatalogRoutes(app: FastifyInstance, parts: HttpParts): void {
  const { config, store, loop } = parts;
  // A ComfyUI graph's `stages` are its nodes: count the stages a run of it is scheduled as (the cost model,
  // which learns as runs end, decides which nodes need a GPU, so this is worked out per request).
  app.get("/v1/workflows", async (request) => ({
    workflows: config.workflows
      .filter((w) => w.tenants.includes(request.identity!.tenant))
      .map((w) => ({ name: w.name, format: w.format, priority: w.priority, stages: declaredStages(w.name, parts.submission).length })),
  }));

  app.get("/v1/gpus", async (request) => {
    const tenant = request.identity!.tenant;
    const used = scheduledMiB(loop, parts.devices);
    const running = loop.runningStages();
    const indexOf = new Map<string, number>();
    const scheduler = parts.scheduler();
    if (scheduler) for (let i = 0; i < scheduler.gpuCount; i++) indexOf.set(scheduler.gpuId(i), i);
    // Model names come from sealed documents: a caller sees by name only the models its own active runs
    // use; any other tenant's appear as their stand-ins.
    const own = new Set<string>();
    for (const run of loop.activeRunsOf(tenant)) for (const stage of run.stages.values()) if (stage.resources.model) own.add(stage.resources.model);
    const shown = (model: string) => (own.has(model) || parts.modelTags === undefined ? model : parts.modelTags.tag(model));
    return {
      source: parts.inventorySource,
      gpus: parts.devices.map((d) => ({
        id: d.id,
        node: d.node,
        name: d.name,
        uuid: d.uuid,
        simulated: d.simulated,
        // A ComfyUI server container's GPU (comfyui.image): real, without a UUID, used by ComfyUI stages only.
        ...("heldBy" in d && { heldBy: d.heldBy }),
        memoryMiB: d.memoryMiB,
        usedMiB: used.get(d.id) ?? 0,
        freeMiB: Math.max(0, d.memoryMiB - (used.get(d.id) ?? 0)),
        residentModels: scheduler && indexOf.has(d.id) ? scheduler.residentModels(indexOf.get(d.id)!).map(shown) : [],
        running: running
          .filter((s) => s.gpus.includes(d.id))
          .map((s) => (s.tenant === tenant ? { runId: s.runId, stageId: s.stageId, simulated: s.simulated } : { tenant: "another tenant" })),
      })),
    };
  });

  app.get("/v1/queue", async (request) => {
    const tenant = request.identity!.tenant;
    const waiting: Array<{ runId: string; stageId: string; reason: string; wait: WaitReason }> = [];
    for (const run of loop.activeRunsOf(tenant)) {
      for (const stageId of run.stages.keys()) {
        const reason = loop.explain(run.id, stageId);
        if (reason !== null) waiting.push({ runId: run.id, stageId, reason: describeWait(reason), wait: reason });
        if (waiting.length >= 1000) break;
      }
      if (waiting.length >= 1000) break;
    }
    const depth = await store.queueDepth();
    return { tenant, activeRuns: depth.byTenant[tenant]?.activeRuns ?? 0, stages: depth.byTenant[tenant] ?? null, waiting };
  });

  app.get("/metrics", async (request, reply) =>
    reply.header("content-type", parts.metrics.registry.contentType).send(await parts.metrics.textFor(request.identity!.tenant))
  );
}
