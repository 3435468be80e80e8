/**
 * The thread of SubmissionThread: parses and validates large submissions (prepareRun) off the event loop
 * that serves the API. It answers each request in order with the prepared run as JSON text (one string
 * crosses the thread boundary faster than a structured clone of thousands of objects), or the ApiError.
 */
import { parentPort, workerData } from "node:worker_threads";
import { CostModel } from "../../graph/index.ts";
import { ApiError } from "./api-error.ts";
import { parseConfigWorkflows, prepareRun, type SubmissionContext } from "./submission.ts";
import type { SubmissionReply, SubmissionRequest, SubmissionThreadInit } from "./submission-thread.ts";

const init = workerData as SubmissionThreadInit;
const port = parentPort!;
const workflows = parseConfigWorkflows(init.config);

port.on("message", (request: SubmissionRequest) => {
  const reply = (message: SubmissionReply) => port.postMessage(message);
  try {
    // The caller parsed the same text already (depth-checked, '__proto__' keys refused): it is valid JSON.
    const body = JSON.parse(request.text) as unknown;
    const costModel = new CostModel();
    costModel.restore(request.costModel);
    const ctx: SubmissionContext = { ...init, workflows, costModel };
    const prepared = prepareRun(body, request.tenant, request.idempotencyKey, ctx);
    // The document and inputs are the body's own: the caller has them parsed already and fills them in.
    const { document: _document, inputs: _inputs, stages: _stages, ...run } = prepared.newRun;
    // The graph's own stages (one per ComfyUI node) are left out: half the text, and the agent reads only the
    // nodes of a running graph (to learn costs); SubmissionThread rebuilds them from the document if asked.
    const { name, format, comfyNodes } = prepared.graph;
    reply({ id: request.id, ok: true, prepared: JSON.stringify({ graph: { name, format, comfyNodes }, stages: prepared.stages, run }) });
  } catch (err) {
    if (err instanceof ApiError) reply({ id: request.id, ok: false, error: { status: err.status, code: err.code, message: err.message, field: err.field, rule: err.rule, issues: err.issues } });
    else reply({ id: request.id, ok: false, error: { status: 500, code: "internal", message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } });
  }
});
