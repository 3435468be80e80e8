/** ComfyUI's history: `GET /history` (max_items, offset), `GET /history/{prompt_id}`, `POST /history` (clear, delete). */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../../service/api-error.ts";
import { TERMINAL_RUN_STATUSES } from "../../store/types.ts";
import { loadPrompt, type ComfyApi } from "./context.ts";
import { comfyRuns, type HistoryEntry } from "./prompts.ts";

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Finished prompts one `GET /history` reads at most (ComfyUI keeps 10,000; the store lists 1,000 runs at a time). */
const HISTORY_WINDOW = 1000;

function wholeNumber(value: string | undefined, field: string, min: number): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ApiError(400, "invalid-request", `${field}: must be a whole number of ${min} or more`, field);
  return n;
}

export function registerHistoryRoutes(app: FastifyInstance, api: ComfyApi): void {
  const { parts } = api;

  app.get<{ Querystring: { max_items?: string; offset?: string } }>("/history", async (request) => {
    const tenant = request.identity!.tenant;
    const maxItems = wholeNumber(request.query.max_items, "max_items", 1);
    let offset = wholeNumber(request.query.offset, "offset", -1) ?? -1;
    const finished = [];
    for (const run of comfyRuns(await parts.store.listRuns(tenant, { limit: HISTORY_WINDOW }))) {
      if (TERMINAL_RUN_STATUSES.includes(run.status) && !(await api.hidden.isHidden(tenant, run.id, run.createdAt))) finished.push(run);
    }
    // As ComfyUI: a negative offset with max_items reads the newest max_items, oldest first.
    if (offset < 0) offset = maxItems !== undefined ? Math.max(0, finished.length - maxItems) : 0;
    const page = finished.slice(offset, maxItems === undefined ? undefined : offset + maxItems);
    const history: Record<string, HistoryEntry> = {};
    for (const run of page) {
      const detail = await parts.store.getRun(tenant, run.id);
      const entry = detail && (await api.prompts.historyEntry(detail));
      if (entry) history[run.id] = entry;
    }
    return history;
  });

  app.get<{ Params: { promptId: string } }>("/history/:promptId", async (request) => {
    const detail = await loadPrompt(api, request, request.params.promptId);
    if (detail === undefined || (await api.hidden.isHidden(detail.run.tenant, detail.run.id, detail.run.createdAt))) return {};
    request.auditInfo!.object = `run/${detail.run.id}`;
    const entry = await api.prompts.historyEntry(detail);
    return entry === undefined ? {} : { [detail.run.id]: entry };
  });

  app.post("/history", async (request, reply) => {
    const body = isObject(request.body) ? request.body : {};
    const tenant = request.identity!.tenant;
    if (body.clear === true) await api.hidden.clear(tenant, new Date().toISOString());
    if (Array.isArray(body.delete)) await api.hidden.delete(tenant, body.delete.filter((id): id is string => typeof id === "string").slice(0, 10_000));
    return reply.code(200).send();
  });
}
