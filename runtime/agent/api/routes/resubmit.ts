/**
 * `POST /v1/runs/:runId/resubmit`: a new run of a stored run's workflow document (or declared workflow),
 * with its inputs and priority, submitted by the caller. The stored fields are sealed: they are opened
 * with the keyring, validated again as a new submission (the config or the rules may have changed since),
 * and stored sealed again under the new run's id.
 */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../../service/api-error.ts";
import { openRunField } from "../../service/sealed-fields.ts";
import { prepareRun, type SubmissionContext } from "../../service/submission.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";
import { storeRun } from "./runs.ts";

/** The submission body that makes the same run again: a declared workflow by name, a submitted document as it was. */
export function resubmissionBody(document: unknown, inputs: unknown, priority: string): Record<string, unknown> {
  const ref = typeof document === "object" && document !== null && !Array.isArray(document) ? (document as Record<string, unknown>).workflowRef : undefined;
  const workflow = typeof ref === "string" && Object.keys(document as object).length === 1 ? { workflowRef: ref } : { workflow: document };
  const hasInputs = typeof inputs === "object" && inputs !== null && Object.keys(inputs).length > 0;
  return { ...workflow, priority, ...(hasInputs && { inputs }) };
}

export function registerResubmitRoute(app: FastifyInstance, parts: HttpParts, submission: SubmissionContext): void {
  app.post("/v1/runs/:runId/resubmit", async (request, reply) => {
    const id = parseRequest(request, "POST /v1/runs/:runId/resubmit").params.runId;
    const identity = request.identity!;
    // Another tenant's run is answered as a missing one: its existence is not confirmed.
    const detail = await parts.store.getRun(identity.tenant, id);
    if (detail === undefined) throw new ApiError(404, "not-found", `no run '${id}'`, "runId");
    const document = await openRunField(parts.keys, identity.tenant, id, "document", detail.document);
    const inputs = await openRunField(parts.keys, identity.tenant, id, "inputs", detail.inputs);
    let prepared;
    try {
      prepared = prepareRun(resubmissionBody(document, inputs, detail.run.priority), identity.tenant, undefined, submission);
    } catch (err) {
      if (err instanceof ApiError) parts.metrics.runRefused(identity.tenant, err.code);
      throw err;
    }
    const { run } = await storeRun(parts, identity, prepared);
    request.auditInfo!.object = `run/${run.id}`;
    request.log.debug({ runId: run.id, from: id, tenant: run.tenant }, "run resubmitted");
    return reply.code(202).header("location", `/v1/runs/${run.id}`).send({ id: run.id, status: run.status });
  });
}
