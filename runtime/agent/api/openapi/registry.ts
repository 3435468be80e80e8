/**
 * The route-schema registry: for each route of ROUTES ("METHOD path", the path as ROUTES spells it), what
 * /openapi.json says of it and the zod schemas its request is validated with.
 *
 * To register a route, add one line to ROUTE_SCHEMAS with schemas exported from the `schemas.ts` beside
 * its route file, e.g.
 *     "GET /v1/usage": { summary: "GPU usage by tenant, workflow and stage", tags: ["usage"], query: UsageQuery, response: UsageResponse },
 * and read the request in the handler with `parseRequest(request, "GET /v1/usage")` (./request.ts).
 * A route of ROUTES without an entry is still documented (with its path parameters, security and role),
 * only less precisely.
 */
import type { z } from "zod";
import { ComfyIntrospectionReportSchema, ComfyEventsSchema, DrainRequestSchema, FinishedReportSchema, KeyRequestSchema, PollRequestSchema, RegisterRequestSchema, StartedReportSchema } from "../../cluster/protocol.ts";
import { SubmitBodySchema } from "../../service/submission.ts";
import * as comfy from "../comfyui/schemas.ts";
import {
  ArtifactParams,
  ArtifactQuery,
  EventsHeaders,
  EventsQuery,
  LogsQuery,
  LogsResponse,
  ProbeResponse,
  RunAccepted,
  RunIdParams,
  StageParams,
  SubmitHeaders,
  WorkflowsResponse,
} from "../routes/schemas.ts";
import { ResubmitAccepted, RunListQuery, RunListResponse, RunStreamQuery } from "../routes/run-list.schemas.ts";
import { GpuHistoryQuery, GpuHistoryResponse, GpusResponse } from "../routes/gpus.schemas.ts";
import { FairshareQuery, FairshareResponse } from "../routes/fairshare.schemas.ts";
import { PoolDemandParams, PoolDemandQuery, PoolDemandResponse } from "../routes/pools.schemas.ts";
import { WorkflowStatsParams, WorkflowStatsQuery, WorkflowStatsResponse } from "../routes/workflow-stats.schemas.ts";
import { AuditQuery, AuditResponse, KeyringQuery, KeyringResponse } from "../routes/admin.schemas.ts";
import { UsageQuery, UsageResponse } from "../routes/usage.schemas.ts";

/** An object schema of named request values (path parameters, query parameters, headers). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ObjectSchema = z.ZodObject<any>;

export interface ResponseDoc {
  readonly description: string;
  /** The body's schema (JSON unless `contentType` says otherwise); absent: no body described. */
  readonly schema?: z.ZodType;
  readonly contentType?: string;
}

export interface RouteSchemas {
  readonly summary: string;
  readonly tags: readonly string[];
  readonly description?: string;
  readonly params?: ObjectSchema;
  readonly query?: ObjectSchema;
  /** Header names in lower case, as the HTTP server hands them over. */
  readonly headers?: ObjectSchema;
  readonly body?: z.ZodType;
  /** The success answer's body (JSON). */
  readonly response?: z.ZodType;
  /** The success status when it is not 200 (e.g. 202 for a submission). */
  readonly status?: number;
  /** Another content type for the success answer (an event stream, an artifact's bytes). */
  readonly contentType?: string;
  /** Answers besides success and the API's errors (which every route may give). */
  readonly responses?: Readonly<Record<number, ResponseDoc>>;
}

const SSE = "text/event-stream";

export const ROUTE_SCHEMAS = {
  "GET /healthz": { summary: "Liveness probe", tags: ["probes"], response: ProbeResponse },
  "GET /readyz": { summary: "Readiness probe", tags: ["probes"], response: ProbeResponse, responses: { 503: { description: "starting or stopping" } } },
  "GET /openapi.json": { summary: "This OpenAPI 3.1 document", tags: ["meta"] },
  "POST /v1/runs": {
    summary: "Submit a run of a workflow",
    tags: ["runs"],
    description: "Give exactly one of `workflow` (a gpufabric Workflow or a ComfyUI API-format prompt, validated by the submission) or `workflowRef`.",
    headers: SubmitHeaders,
    body: SubmitBodySchema,
    status: 202,
    response: RunAccepted,
  },
  "GET /v1/runs": { summary: "The tenant's runs, newest first, a page at a time", tags: ["runs"], query: RunListQuery, response: RunListResponse },
  "GET /v1/runs/stream": {
    summary: "Follow changes to the tenant's runs (server-sent events)",
    tags: ["runs"],
    description: "An event `run` with the run's summary (as in the list) each time a run matching the filters changes; `: keepalive` comments every 15 s.",
    query: RunStreamQuery,
    contentType: SSE,
  },
  "POST /v1/runs/:runId/resubmit": { summary: "Submit a run again: the same workflow, inputs and priority", tags: ["runs"], params: RunIdParams, status: 202, response: ResubmitAccepted },
  "GET /v1/runs/:runId": { summary: "A run: its status, stages, attempts and artifacts", tags: ["runs"], params: RunIdParams },
  "GET /v1/runs/:runId/events": { summary: "Follow a run's events (server-sent events)", tags: ["runs"], params: RunIdParams, query: EventsQuery, headers: EventsHeaders, contentType: SSE },
  "POST /v1/runs/:runId/cancel": { summary: "Cancel a run", tags: ["runs"], params: RunIdParams, status: 202, response: RunAccepted },
  "GET /v1/runs/:runId/artifacts/:name": {
    summary: "Download an artifact of a run",
    tags: ["artifacts"],
    params: ArtifactParams,
    query: ArtifactQuery,
    contentType: "application/octet-stream",
    responses: { 409: { description: "several stages wrote this name: ask with ?stage=" } },
  },
  "GET /v1/runs/:runId/stages/:stageId/logs": { summary: "The tail of a stage attempt's logs", tags: ["runs"], params: StageParams, query: LogsQuery, response: LogsResponse },
  "GET /v1/workflows": { summary: "The workflows the tenant may run", tags: ["catalog"], response: WorkflowsResponse },
  "GET /v1/queue": { summary: "The tenant's waiting stages and why they wait", tags: ["catalog"] },
  "GET /metrics": { summary: "The tenant's metrics (Prometheus text)", tags: ["catalog"], contentType: "text/plain" },
  "GET /v1/gpus": { summary: "The GPUs: memory, use, resident models and the stages they run", tags: ["gpus"], response: GpusResponse },
  "GET /v1/gpus/history": { summary: "Each GPU's VRAM use and utilization over the last minutes (24 h at most)", tags: ["gpus"], query: GpuHistoryQuery, response: GpuHistoryResponse },
  "GET /v1/fairshare": { summary: "Fair share: the tenant's weight, share, quota and queued GPU-seconds, other tenants summed", tags: ["gpus"], query: FairshareQuery, response: FairshareResponse },
  "GET /v1/pools/:pool/demand": {
    summary: "The workers (GPU nodes) the pool's queued work needs now, and why (cluster mode with elasticity, the leader)",
    tags: ["gpus"],
    params: PoolDemandParams,
    query: PoolDemandQuery,
    response: PoolDemandResponse,
    responses: { 404: { description: "no such pool, or no elasticity for it" }, 503: { description: "this control plane does not lead: ask the leader" } },
  },
  "GET /v1/workflows/:name/stats": {
    summary: "A workflow's stage duration percentiles over its last finished runs, with regressions flagged",
    tags: ["catalog"],
    params: WorkflowStatsParams,
    query: WorkflowStatsQuery,
    response: WorkflowStatsResponse,
  },
  "GET /v1/audit": { summary: "The tenant's audit log entries, newest first, with the chain's verify status and last checkpoint", tags: ["admin"], query: AuditQuery, response: AuditResponse },
  "GET /v1/keyring": { summary: "The keyring's versions (never key material)", tags: ["admin"], query: KeyringQuery, response: KeyringResponse },
  "GET /v1/usage": { summary: "The tenant's GPU usage by tenant, workflow and stage over a time range", tags: ["usage"], query: UsageQuery, response: UsageResponse },
  "GET /v1/usage.csv": {
    summary: "The same usage as a CSV chargeback export (RFC 4180, a header row, an attachment)",
    tags: ["usage"],
    query: UsageQuery,
    contentType: "text/csv",
  },
  // Workers of a cluster (their bodies are checked with these schemas: see ../../cluster/routes.ts).
  "POST /v1/cluster/workers": { summary: "A worker joins", tags: ["cluster"], body: RegisterRequestSchema, responses: { 421: { description: "this control plane does not lead" } } },
  "POST /v1/cluster/poll": { summary: "A worker asks for work", tags: ["cluster"], body: PollRequestSchema, responses: { 421: { description: "this control plane does not lead" } } },
  "POST /v1/cluster/attempts/:attemptId/started": { summary: "A worker reports an attempt started", tags: ["cluster"], body: StartedReportSchema },
  "POST /v1/cluster/attempts/:attemptId/finished": { summary: "A worker reports an attempt finished", tags: ["cluster"], body: FinishedReportSchema },
  "POST /v1/cluster/keys": { summary: "A worker asks for a data key", tags: ["cluster"], body: KeyRequestSchema },
  "POST /v1/cluster/drain": { summary: "A worker drains (no new stages on its GPUs) or, holding none, leaves", tags: ["cluster"], body: DrainRequestSchema, responses: { 421: { description: "this control plane does not lead" } } },
  "POST /v1/cluster/comfy-events": { summary: "A worker relays its ComfyUI servers' events", tags: ["cluster"], body: ComfyEventsSchema },
  "POST /v1/cluster/comfy-introspection": { summary: "A worker reports what its ComfyUI servers offer", tags: ["cluster"], body: ComfyIntrospectionReportSchema },
} as const satisfies Record<string, RouteSchemas>;

export type RouteKey = keyof typeof ROUTE_SCHEMAS;

/**
 * ComfyUI's routes, documented under both of their prefixes (`/comfyui` and `/comfyui/api`). Descriptive
 * only: ComfyUI's handlers keep their own lenient parsing and error shapes (see ../comfyui/schemas.ts).
 */
const COMFY_ERROR: ResponseDoc = { description: "the prompt is refused (ComfyUI's error shape)", schema: comfy.ComfyErrorSchema };
export const COMFY_SCHEMAS: Readonly<Record<string, RouteSchemas>> = {
  "POST /prompt": { summary: "Queue a prompt", tags: ["comfyui"], body: comfy.PromptBody, response: comfy.PromptQueued, responses: { 400: COMFY_ERROR } },
  "GET /prompt": { summary: "How many prompts wait", tags: ["comfyui"] },
  "GET /queue": { summary: "The running and pending prompts", tags: ["comfyui"] },
  "POST /queue": { summary: "Clear the queue or delete pending prompts", tags: ["comfyui"], body: comfy.ClearOrDelete },
  "POST /interrupt": { summary: "Interrupt the running prompt", tags: ["comfyui"] },
  "GET /history": { summary: "The prompts' history", tags: ["comfyui"], query: comfy.HistoryQuery },
  "GET /history/:promptId": { summary: "One prompt's history", tags: ["comfyui"], params: comfy.PromptIdParams },
  "POST /history": { summary: "Clear the history or delete entries", tags: ["comfyui"], body: comfy.ClearOrDelete },
  "GET /view": { summary: "An output or uploaded image", tags: ["comfyui"], query: comfy.ViewQuery, contentType: "application/octet-stream" },
  "POST /upload/image": { summary: "Upload an image for a prompt (multipart/form-data)", tags: ["comfyui"] },
  "GET /object_info": { summary: "The node classes offered", tags: ["comfyui"] },
  "GET /object_info/:nodeClass": { summary: "One node class", tags: ["comfyui"], params: comfy.NodeClassParams },
  "GET /models": { summary: "The model folders", tags: ["comfyui"] },
  "GET /models/:folder": { summary: "The models of a folder", tags: ["comfyui"], params: comfy.FolderParams },
  "GET /embeddings": { summary: "The embeddings", tags: ["comfyui"] },
  "GET /extensions": { summary: "The web extensions", tags: ["comfyui"] },
  "GET /features": { summary: "The server's features", tags: ["comfyui"] },
  "GET /system_stats": { summary: "The system and its GPUs", tags: ["comfyui"] },
  "GET /ws": { summary: "ComfyUI's WebSocket of progress events (upgrade)", tags: ["comfyui"], query: comfy.WsQuery, responses: { 101: { description: "switching to the WebSocket protocol" } } },
};

const COMFY_PREFIXES = ["/comfyui/api", "/comfyui"] as const;

/** The registry's entry of a route of ROUTES, if it has one. */
export function routeSchemas(method: string, path: string): RouteSchemas | undefined {
  const key = `${method.toUpperCase()} ${path}`;
  if (Object.hasOwn(ROUTE_SCHEMAS, key)) return (ROUTE_SCHEMAS as Record<string, RouteSchemas>)[key];
  const prefix = COMFY_PREFIXES.find((p) => path.startsWith(`${p}/`));
  return prefix === undefined ? undefined : COMFY_SCHEMAS[`${method.toUpperCase()} ${path.slice(prefix.length)}`];
}
