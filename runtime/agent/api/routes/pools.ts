/**
 * GET /v1/pools/:pool/demand: the number of workers the pool's queued work needs, as the leading control
 * plane's demand controller last computed it (the value of gpufabric_pool_desired_workers), with why.
 *
 * A viewer's route (gpus:read): how many GPU nodes the platform asks for is no tenant's secret, but the
 * stages behind it are. Every tenant's waiting stages are counted; only the caller's own are named.
 */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../../service/api-error.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";

export function registerPoolRoutes(app: FastifyInstance, parts: HttpParts): void {
  app.get("/v1/pools/:pool/demand", async (request) => {
    const { params } = parseRequest(request, "GET /v1/pools/:pool/demand");
    const tenant = request.identity!.tenant;
    const { config } = parts;
    if (!config.pools.some((p) => p.name === params.pool)) {
      throw new ApiError(404, "not-found", `no pool '${params.pool}': the platform config declares ${config.pools.map((p) => `'${p.name}'`).join(", ")}`, "pool");
    }
    if (config.cluster === null || params.pool !== config.deployment.pool || !config.cluster.elasticity.enabled) {
      throw new ApiError(
        404,
        "not-elastic",
        config.cluster === null
          ? "elasticity is a cluster-mode feature: this agent runs its pool's GPUs itself (set cluster and cluster.elasticity.enabled)"
          : params.pool !== config.deployment.pool
            ? `this deployment schedules pool '${config.deployment.pool}', not '${params.pool}'`
            : "cluster.elasticity.enabled is false: no demand is computed for this pool",
        "pool"
      );
    }
    const d = parts.demand?.();
    if (d === undefined) {
      const leader = await parts.cluster?.leaderUrl().catch(() => null);
      throw new ApiError(503, "not-leader", `only the leading control plane computes the demand${leader ? `: ask ${leader}` : ", and none leads right now (or it has not computed yet): try again in a few seconds"}`);
    }
    return {
      pool: d.pool,
      computedAt: new Date(d.atMs).toISOString(),
      desiredWorkers: d.desired,
      currentWorkers: d.current,
      readyWorkers: d.ready,
      startingWorkers: d.starting,
      drainingWorkers: d.draining,
      minWorkers: d.minWorkers,
      maxWorkers: d.maxWorkers,
      provider: d.provider,
      requestedWorkers: d.requested,
      breakdown: d.breakdown,
      reasons: [...d.reasons],
      waiting: {
        total: d.waiting.length,
        mine: d.waiting.filter((w) => w.tenant === tenant).map((w) => ({ runId: w.runId, stageId: w.stageId, gpus: w.gpus, vramMiB: w.vramMiB, priority: w.priority, waitingS: w.waitingS })),
      },
      unplaceable: {
        total: d.unplaceable.length,
        mine: d.unplaceable.filter((u) => u.tenant === tenant).map((u) => ({ runId: u.runId, stageId: u.stageId, reason: u.reason })),
      },
      scalerError: d.scalerError,
    };
  });
}
