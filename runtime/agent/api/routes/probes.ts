/** The kubelet's probes: public, never audited. */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../../service/api-error.ts";
import type { HttpParts } from "../parts.ts";

export function registerProbeRoutes(app: FastifyInstance, parts: HttpParts): void {
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) =>
    parts.isReady() ? { status: "ready" } : reply.code(503).send(new ApiError(503, "not-ready", "the agent is starting or stopping").body())
  );
}
