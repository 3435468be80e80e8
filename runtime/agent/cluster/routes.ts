/**
 * The workers' routes of a control plane (`/v1/cluster/...`, declared with action WORKER in the route
 * table). A worker authenticates with its own token (the hash files of cluster.workerTokens); tenants'
 * tokens never pass here, and workers' tokens pass nowhere else. Only the leader hands out work: a
 * control plane that does not lead answers 421 with the leader's URL, and the worker goes there.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { authFailure, type AuthResult } from "../../security/identity/types.ts";
import { ApiError } from "../service/api-error.ts";
// Bodies are parsed with the schemas /openapi.json documents (the registry names this module's protocol schemas).
import { parseRequest } from "../api/openapi/request.ts";
import type { ClusterComfy } from "./comfy-leader.ts";
import type { WorkerRegistry } from "./registry.ts";
import { CLUSTER_PREFIX, COMFY_INTROSPECTION_BODY_LIMIT, type NotLeader } from "./protocol.ts";

export interface ClusterHttp {
  /** Checks a worker's bearer token. */
  authenticate(authorization: string | undefined): AuthResult;
  /** The registry while this control plane leads; undefined while it does not. */
  registry(): WorkerRegistry | undefined;
  /** The leader's advertised URL, when one is known. */
  leaderUrl(): Promise<string | null>;
  /** The workers' ComfyUI servers (config.comfyui set): their live events and what they offer. */
  readonly comfy?: ClusterComfy;
}

export const CLUSTER_ROUTES = [
  { method: "POST", path: `${CLUSTER_PREFIX}/workers` },
  { method: "POST", path: `${CLUSTER_PREFIX}/poll` },
  { method: "POST", path: `${CLUSTER_PREFIX}/attempts/:attemptId/started` },
  { method: "POST", path: `${CLUSTER_PREFIX}/attempts/:attemptId/finished` },
  { method: "POST", path: `${CLUSTER_PREFIX}/keys` },
  { method: "POST", path: `${CLUSTER_PREFIX}/drain` },
  { method: "POST", path: `${CLUSTER_PREFIX}/comfy-events` },
  { method: "POST", path: `${CLUSTER_PREFIX}/comfy-introspection` },
] as const;

export function registerClusterRoutes(app: FastifyInstance, cluster: ClusterHttp | undefined): void {
  // Answers for a worker that asked a control plane which does not lead.
  const leading = async (reply: FastifyReply): Promise<WorkerRegistry | undefined> => {
    const registry = cluster?.registry();
    if (registry !== undefined) return registry;
    const leader = (await cluster?.leaderUrl()) ?? null;
    const body: NotLeader = { error: "not-leader", leader, message: leader === null ? "no leader is elected yet: retry shortly" : `this control plane does not lead: ask ${leader}` };
    void reply.code(421).send(body);
    return undefined;
  };
  const subject = (request: FastifyRequest) => request.identity!.subject;

  app.post(`${CLUSTER_PREFIX}/workers`, async (request, reply) => {
    const body = parseRequest(request, "POST /v1/cluster/workers").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    return registry.register(subject(request), body);
  });

  app.post(`${CLUSTER_PREFIX}/poll`, async (request, reply) => {
    const body = parseRequest(request, "POST /v1/cluster/poll").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    return registry.poll(subject(request), body);
  });

  app.post<{ Params: { attemptId: string } }>(`${CLUSTER_PREFIX}/attempts/:attemptId/started`, async (request, reply) => {
    const body = parseRequest(request, "POST /v1/cluster/attempts/:attemptId/started").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    registry.started(subject(request), request.params.attemptId, body);
    return { ok: true };
  });

  app.post<{ Params: { attemptId: string } }>(`${CLUSTER_PREFIX}/attempts/:attemptId/finished`, async (request, reply) => {
    const body = parseRequest(request, "POST /v1/cluster/attempts/:attemptId/finished").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    registry.finished(subject(request), request.params.attemptId, body);
    return { ok: true };
  });

  app.post(`${CLUSTER_PREFIX}/keys`, async (request, reply) => {
    const body = parseRequest(request, "POST /v1/cluster/keys").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    return registry.key(subject(request), body);
  });

  app.post(`${CLUSTER_PREFIX}/drain`, async (request, reply) => {
    const body = parseRequest(request, "POST /v1/cluster/drain").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    return registry.drain(subject(request), body);
  });

  const comfy = (): ClusterComfy => {
    if (cluster?.comfy === undefined) throw new ApiError(404, "not-found", "this cluster runs no ComfyUI servers (config.comfyui is null)");
    return cluster.comfy;
  };
  app.post(`${CLUSTER_PREFIX}/comfy-events`, async (request, reply) => {
    const hub = comfy();
    const body = parseRequest(request, "POST /v1/cluster/comfy-events").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    return hub.events(registry, subject(request), body);
  });

  // A real server's /object_info runs to a few MiB: more than the API's usual body limit.
  app.post(`${CLUSTER_PREFIX}/comfy-introspection`, { bodyLimit: COMFY_INTROSPECTION_BODY_LIMIT }, async (request, reply) => {
    const hub = comfy();
    const body = parseRequest(request, "POST /v1/cluster/comfy-introspection").body;
    const registry = await leading(reply);
    if (registry === undefined) return reply;
    return hub.report(registry, subject(request), body);
  });
}

/**
 * The check of a worker's route in the API's onRequest hook: a worker's own token, else 401 (a single
 * agent, with no cluster, knows no worker token: every call is refused the same way).
 */
export function authenticateWorker(cluster: ClusterHttp | undefined, authorization: string | undefined): AuthResult {
  if (cluster === undefined) {
    return authFailure(authorization === undefined ? "missing" : "unknown-token", "this agent runs no cluster: no worker token is valid here");
  }
  return cluster.authenticate(authorization);
}
