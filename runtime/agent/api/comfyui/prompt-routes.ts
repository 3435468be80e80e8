/** ComfyUI's queue: `POST /prompt` and `GET /prompt`, `GET`/`POST /queue`, `POST /interrupt`. */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../../service/api-error.ts";
import { prepareRun } from "../../service/submission.ts";
import { storeRun } from "../routes/runs.ts";
import { cancelPrompt, loadPrompt, type ComfyApi } from "./context.ts";
import { ComfyError, errorItem, outputsFailed, type ComfyNodeErrors } from "./errors.ts";
import { comfyRuns } from "./prompts.ts";
import { checkPromptRequest, uploadValues } from "./validate.ts";

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Uploaded images one prompt may carry in its sealed inputs, together. */
const MAX_PROMPT_UPLOAD_BYTES = 64 * 1024 * 1024;

export function registerPromptRoutes(app: FastifyInstance, api: ComfyApi): void {
  const { parts } = api;

  app.post("/prompt", async (request, reply) => {
    try {
      return reply.send(await queuePrompt(api, request));
    } catch (err) {
      if (!(err instanceof ComfyError)) throw err;
      request.auditInfo!.rule = err.error.type;
      return reply.code(err.status).send(err.body());
    }
  });

  app.get("/prompt", async (request) => ({ exec_info: { queue_remaining: await api.hub.queueRemaining(request.identity!.tenant) } }));

  app.get("/queue", async (request) => {
    const tenant = request.identity!.tenant;
    const [running, pending] = await Promise.all(
      (["running", "queued"] as const).map(async (status) => {
        const items = [];
        for (const run of comfyRuns(await parts.store.listRuns(tenant, { status, limit: 1000 }))) {
          const detail = await parts.store.getRun(tenant, run.id);
          const item = detail && (await api.prompts.queueItem(detail));
          if (item) items.push(item);
        }
        return items;
      }),
    );
    return { queue_running: running, queue_pending: pending };
  });

  app.post("/queue", async (request, reply) => {
    const body = isObject(request.body) ? request.body : {};
    const tenant = request.identity!.tenant;
    const targets = new Set<string>();
    if (body.clear === true) for (const run of comfyRuns(await parts.store.listRuns(tenant, { status: "queued", limit: 1000 }))) targets.add(run.id);
    if (Array.isArray(body.delete)) for (const id of body.delete) if (typeof id === "string") targets.add(id);
    // As in ComfyUI, only pending prompts leave the queue here; a running one is stopped with /interrupt.
    for (const id of targets) {
      const detail = await loadPrompt(api, request, id);
      if (detail?.run.status === "queued") await cancelPrompt(api, request.identity!, detail);
    }
    return reply.code(200).send();
  });

  app.post("/interrupt", async (request, reply) => {
    const body = isObject(request.body) ? request.body : {};
    const identity = request.identity!;
    if (typeof body.prompt_id === "string") {
      const detail = await loadPrompt(api, request, body.prompt_id);
      if (detail?.run.status === "running") {
        request.auditInfo!.object = `run/${detail.run.id}`;
        await cancelPrompt(api, identity, detail);
      }
    } else {
      // No prompt named: ComfyUI stops what is running; here, the caller's own running prompts.
      for (const run of comfyRuns(await parts.store.listRuns(identity.tenant, { status: "running", limit: 1000 }))) {
        if (run.submittedBy !== identity.subject) continue;
        const detail = await parts.store.getRun(identity.tenant, run.id);
        if (detail !== undefined) await cancelPrompt(api, identity, detail);
      }
    }
    return reply.code(200).send();
  });
}

async function queuePrompt(api: ComfyApi, request: FastifyRequest): Promise<{ prompt_id: string; number: number; node_errors: ComfyNodeErrors }> {
  const { parts } = api;
  const identity = request.identity!;
  const tenant = identity.tenant;
  const uploaded = new Set<string>();
  for (const value of uploadValues(request.body)) if (await api.uploads.has(tenant, value)) uploaded.add(value);
  const objectInfo = (await parts.comfy?.introspection?.objectInfo().catch(() => null)) ?? null;
  const checked = checkPromptRequest(request.body, { objectInfo, hasUpload: (v) => uploaded.has(v) });

  const promptId = checked.promptId ?? randomUUID();
  request.auditInfo!.object = `run/${promptId}`;
  const existing = await loadPrompt(api, request, promptId);
  if (existing !== undefined) {
    // The same prompt id again: the prompt is queued once (a client retrying after a lost answer).
    const doc = await api.prompts.document(existing);
    return { prompt_id: promptId, number: doc?.number ?? 0, node_errors: checked.nodeErrors };
  }
  const next = api.nextNumber();
  const number = checked.number ?? (checked.front ? -next : next);

  const files: Record<string, string> = {};
  let bytes = 0;
  for (const value of checked.uploads) {
    const content = await api.uploads.read(tenant, value);
    if (content === undefined) continue; // checked above; deleted since: the stage reports the missing file
    bytes += content.length;
    if (bytes > MAX_PROMPT_UPLOAD_BYTES) {
      throw new ComfyError(400, errorItem("invalid_prompt", "Prompt loads too many uploaded images", `the images it loads exceed ${MAX_PROMPT_UPLOAD_BYTES} bytes together: split the prompt`));
    }
    files[value] = content.toString("base64");
  }
  const gpufabric = isObject(checked.extraData.gpufabric) ? checked.extraData.gpufabric : {};
  const body = {
    workflow: {
      prompt: checked.prompt,
      ...(checked.clientId !== undefined && { client_id: checked.clientId }),
      number,
      extra_data: { ...checked.extraData, ...(checked.clientId !== undefined && { client_id: checked.clientId }), create_time: Date.now() },
      outputs: checked.outputs,
    },
    ...(Object.keys(files).length > 0 && { inputs: { comfyui: { uploads: files } } }),
    // extra_data.gpufabric: what a ComfyUI body cannot say otherwise (ComfyUI ignores unknown extra_data).
    ...(gpufabric.mode === "whole-graph" || gpufabric.mode === "segmented" ? { comfyuiMode: gpufabric.mode } : {}),
    ...(gpufabric.priority === "interactive" || gpufabric.priority === "batch" ? { priority: gpufabric.priority } : {}),
  };
  let prepared;
  try {
    prepared = prepareRun(body, tenant, undefined, api.submission);
  } catch (err) {
    if (err instanceof ApiError && err.status !== 403) throw asComfyError(err, checked.prompt);
    throw err;
  }
  let stored;
  try {
    stored = await storeRun(parts, identity, prepared, promptId);
  } catch (err) {
    // Another tenant's run has this id: the client picks another (nothing says whose it is).
    if ((await parts.store.getRun(tenant, promptId)) === undefined && !(err instanceof ApiError)) {
      throw new ComfyError(400, errorItem("invalid_prompt_id", "prompt_id is already in use", "send another prompt_id, or none"));
    }
    throw err;
  }
  if (stored.created) api.hub.watch(tenant, promptId, checked.clientId ?? null);
  return { prompt_id: promptId, number, node_errors: checked.nodeErrors };
}

/** A refusal of the importer or the planner, in ComfyUI's shape: the node it names gets the error. */
function asComfyError(err: ApiError, prompt: Record<string, { class_type: string }>): ComfyError {
  const node = /workflow\["([^"]+)"\]|workflow\.prompt\."([^"]+)"|workflow\."([^"]+)"/.exec(err.field ?? err.message);
  const id = node?.[1] ?? node?.[2] ?? node?.[3];
  if (id === undefined || prompt[id] === undefined) return new ComfyError(400, errorItem("invalid_prompt", err.message, err.field ?? ""));
  const type = err.code === "fits-no-gpu" ? "exception_during_validation" : /links? /.test(err.message) ? "bad_linked_input" : "invalid_input_type";
  return outputsFailed({ [id]: { errors: [errorItem(type, err.message, err.field ?? "")], dependent_outputs: [], class_type: prompt[id]!.class_type } });
}
