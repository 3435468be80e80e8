/** Runs: submit, list, read, cancel, and follow a run's events. */
import type { FastifyInstance } from "fastify";
import type { Identity } from "../../../security/identity/index.ts";
import type { RunRecord } from "../../store/types.ts";
import { ApiError } from "../../service/api-error.ts";
import { sealRunFields } from "../../service/sealed-fields.ts";
import { prepareRun, type PreparedRun, type SubmissionContext } from "../../service/submission.ts";
import type { SubmissionThread } from "../../service/submission-thread.ts";
import { streamEvents } from "../../service/event-stream.ts";
import type { HttpParts } from "../parts.ts";
import { runDetailView } from "./run-detail.ts";
import { parseRequest } from "../openapi/request.ts";
import { loadRun } from "./lookup.ts";

/** How submissions are prepared: inline for small bodies, on the submission thread for large ones. */
export interface Submitting {
  readonly submission: SubmissionContext;
  readonly submissionThread: SubmissionThread;
}

/**
 * Stores a prepared run (its sensitive fields sealed) and hands a new one to the loop. `id`: the run's id
 * when the client chose it (a ComfyUI prompt id).
 */
export async function storeRun(parts: HttpParts, identity: Identity, prepared: PreparedRun, id?: string): Promise<{ run: RunRecord; created: boolean }> {
  // The submitter is recorded so that it, and not every submitter of the tenant, may cancel the run.
  const newRun = { ...prepared.newRun, submittedBy: identity.subject, ...(id !== undefined && { id }) };
  const { run, created } = await parts.store.createRun(await sealRunFields(parts.keys, newRun, parts.modelTags));
  if (created) {
    parts.metrics.runSubmitted(identity.tenant);
    parts.loop.accept(run, prepared.stages, prepared.graph.format === "comfyui" ? prepared.graph : undefined);
    // A new run is a change of the tenant's runs list (GET /v1/runs/stream), placed or not.
    parts.loop.changes.emit("run", run.id);
  }
  return { run, created };
}

export function registerRunRoutes(app: FastifyInstance, parts: HttpParts, { submission, submissionThread }: Submitting): void {
  const { store, loop } = parts;
  app.post("/v1/runs", async (request, reply) => {
    const identity = request.identity!;
    // The body is checked by prepareRun with the same registered schema (SubmitBodySchema), on the
    // submission thread when it is large, so only the headers are parsed here.
    const idempotencyKey = parseRequest(request, "POST /v1/runs", ["headers"]).headers["idempotency-key"];
    let prepared;
    try {
      prepared =
        request.largeJsonText !== null
          ? await submissionThread.prepare(request.largeJsonText, request.body, identity.tenant, idempotencyKey)
          : prepareRun(request.body ?? {}, identity.tenant, idempotencyKey, submission);
    } catch (err) {
      if (err instanceof ApiError) parts.metrics.runRefused(identity.tenant, err.code);
      throw err;
    }
    const { run, created } = await storeRun(parts, identity, prepared);
    request.auditInfo!.object = `run/${run.id}`;
    request.log.debug(
      { runId: run.id, tenant: run.tenant, workflow: run.workflow, created },
      created ? "run accepted" : "run resubmitted with its idempotency key"
    );
    return reply.code(202).header("location", `/v1/runs/${run.id}`).header("idempotent-replayed", String(!created)).send({ id: run.id, status: run.status });
  });

  // GET /v1/runs (the list, paged) and its live stream: ./run-list.ts.

  app.get("/v1/runs/:runId", async (request) => runDetailView(parts, await loadRun(store, request, parseRequest(request, "GET /v1/runs/:runId").params.runId)));

  app.post("/v1/runs/:runId/cancel", async (request, reply) => {
    const id = parseRequest(request, "POST /v1/runs/:runId/cancel").params.runId;
    const identity = request.identity!;
    const detail = await store.getRun(identity.tenant, id);
    if (detail === undefined) throw new ApiError(404, "not-found", `no run '${id}'`, "runId");
    // A submitter cancels its own runs; another subject's run (or one whose submitter is unknown) takes a tenant admin.
    const owner = detail.run.submittedBy;
    const decision = parts.authorizer.authorize(identity, "runs:cancel", { tenant: detail.run.tenant, owner });
    if (!decision.allowed) {
      throw new ApiError(
        decision.status,
        decision.reason,
        decision.reason === "insufficient-role"
          ? `run '${id}' was submitted by ${owner === null ? "an unrecorded subject" : `'${owner}'`}: only its submitter or an admin of tenant '${identity.tenant}' may cancel it ('${identity.subject}' holds ${parts.authorizer.bindings.roleOf(identity) ?? "no role"})`
          : decision.detail,
        "runId"
      );
    }
    const run = await loop.cancel(identity.tenant, id);
    if (run === undefined) throw new ApiError(404, "not-found", `no run '${id}'`, "runId");
    return reply.code(202).send({ id: run.id, status: run.status });
  });

  app.get("/v1/runs/:runId/events", async (request, reply) => {
    const tenant = request.identity!.tenant;
    const { params, query, headers } = parseRequest(request, "GET /v1/runs/:runId/events");
    const id = params.runId;
    // An EventSource that reconnects sends the last id it saw as a header: it takes the place of ?after.
    const after = Number(headers["last-event-id"] ?? query.after ?? "0");
    if ((await store.eventsSince(tenant, id, after, 1)) === undefined) throw new ApiError(404, "not-found", `no run '${id}'`, "runId");
    streamEvents(request, reply, store, loop, tenant, id, after, parts.eventPollMs);
  });
}
