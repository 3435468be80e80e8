/** Checked route parameters and the caller's own run: another tenant's id reads as missing (404). */
import type { FastifyRequest } from "fastify";
import { checkName } from "../../../security/names/index.ts";
import type { RunDetail, Store } from "../../store/types.ts";
import { ApiError } from "../../service/api-error.ts";
// The request's identity, set by the server's authentication hook.
import type {} from "../parts.ts";

export function validId(kind: "run" | "stage", value: string, field: string): string {
  const check = checkName(kind, value);
  if (!check.ok) throw new ApiError(400, "invalid-request", `${field}: ${check.problem}`, field);
  return check.name;
}

/** `checkedId`: the run id as the route's registered schema parsed it (default: checked here). */
export async function loadRun(store: Store, request: FastifyRequest, checkedId?: string): Promise<RunDetail> {
  const id = checkedId ?? validId("run", (request.params as { runId: string }).runId, "runId");
  const detail = await store.getRun(request.identity!.tenant, id);
  if (detail === undefined) throw new ApiError(404, "not-found", `no run '${id}'`, "runId");
  return detail;
}
