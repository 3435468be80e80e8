/** What a tenant may look at besides its runs: its workflows, its queue, and its metrics (the GPUs: ./gpus.ts). */
import type { FastifyInstance } from "fastify";
import type { WaitReason } from "../../../scheduler/index.ts";
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
