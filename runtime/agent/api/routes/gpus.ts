/** The GPUs and their use: now (GET /v1/gpus) and over the last hours (GET /v1/gpus/history). */
import type { FastifyInstance } from "fastify";
import { scheduledMiB } from "../../service/metrics.ts";
import { GpuHistory } from "../../service/gpu-history.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";

export function registerGpuRoutes(app: FastifyInstance, parts: HttpParts): void {
  const { loop } = parts;
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

  // The agent passes the history it samples; an API built without one (tests of the routes) samples its own.
  let history = parts.gpuHistory;
  if (history === undefined) {
    const own = new GpuHistory({ devices: parts.devices, reservedMiB: () => scheduledMiB(loop, parts.devices) });
    own.start();
    app.addHook("onClose", async () => own.stop());
    history = own;
  }
  const sampled = history;
  // Device-level figures only (MiB, utilization): which tenant's stage used a device is not part of them.
  app.get("/v1/gpus/history", async (request) => {
    const { query } = parseRequest(request, "GET /v1/gpus/history");
    return sampled.read(query.minutes);
  });
}
