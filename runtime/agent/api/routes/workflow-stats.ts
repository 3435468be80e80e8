/**
 * GET /v1/workflows/:name/stats: each stage's execution seconds (its succeeded attempt, process start to
 * end) over the workflow's last finished runs of the caller's tenant: count, p50/p90/p99, and the median
 * of the last 10 runs against the runs before them, flagged as a regression at 1.25× (see stage-stats.ts).
 */
import type { FastifyInstance } from "fastify";
import { stageStats } from "../../service/stage-stats.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";

export function registerWorkflowStatsRoutes(app: FastifyInstance, parts: HttpParts): void {
  app.get("/v1/workflows/:name/stats", async (request) => {
    const { params, query } = parseRequest(request, "GET /v1/workflows/:name/stats");
    const name = params.name;
    const runs = query.runs;
    // The caller's tenant only: another tenant's runs of a workflow of the same name never count.
    const times = await parts.store.stageTimes(request.identity!.tenant, name, runs);
    return { workflow: name, runs: times.length, stages: stageStats(times) };
  });
}
