/** Every route of the agent's API with the action it performs: checked against what is registered at start. */
import { PUBLIC, RouteTable, WORKER, type RouteDeclaration } from "../../security/authz/index.ts";
import { CLUSTER_ROUTES } from "../cluster/routes.ts";
import { COMFY_ROUTES } from "./comfyui/routes.ts";

export const ROUTES: readonly RouteDeclaration[] = [
  { method: "GET", path: "/healthz", action: PUBLIC },
  { method: "GET", path: "/readyz", action: PUBLIC },
  // This API's OpenAPI 3.1 document (see ./openapi/).
  { method: "GET", path: "/openapi.json", action: PUBLIC },
  { method: "POST", path: "/v1/runs", action: "runs:submit" },
  { method: "GET", path: "/v1/runs", action: "runs:read" },
  { method: "GET", path: "/v1/runs/stream", action: "runs:read" },
  { method: "GET", path: "/v1/runs/:runId", action: "runs:read" },
  { method: "POST", path: "/v1/runs/:runId/resubmit", action: "runs:submit" },
  { method: "GET", path: "/v1/runs/:runId/events", action: "runs:read" },
  { method: "POST", path: "/v1/runs/:runId/cancel", action: "runs:cancel" },
  { method: "GET", path: "/v1/runs/:runId/artifacts/:name", action: "artifacts:read" },
  { method: "GET", path: "/v1/runs/:runId/stages/:stageId/logs", action: "logs:read" },
  { method: "GET", path: "/v1/workflows", action: "workflows:read" },
  { method: "GET", path: "/v1/gpus", action: "gpus:read" },
  { method: "GET", path: "/v1/gpus/history", action: "gpus:read" },
  { method: "GET", path: "/v1/fairshare", action: "gpus:read" },
  // The pool's demand for workers (cluster.elasticity): counts for everyone, the caller's own stages by name.
  { method: "GET", path: "/v1/pools/:pool/demand", action: "gpus:read" },
  { method: "GET", path: "/v1/workflows/:name/stats", action: "runs:read" },
  { method: "GET", path: "/v1/audit", action: "admin:audit-read" },
  { method: "GET", path: "/v1/keyring", action: "admin:keyring-read" },
  { method: "GET", path: "/v1/queue", action: "queue:read" },
  { method: "GET", path: "/metrics", action: "metrics:read" },
  { method: "GET", path: "/v1/usage", action: "usage:read" },
  { method: "GET", path: "/v1/usage.csv", action: "usage:read" },
  // The dashboard: its built files (no data in them) and its session, which authenticates what it is sent itself.
  { method: "GET", path: "/ui", action: PUBLIC },
  { method: "GET", path: "/ui/", action: PUBLIC },
  { method: "GET", path: "/ui/assets/:file", action: PUBLIC },
  { method: "GET", path: "/ui/:file", action: PUBLIC },
  { method: "POST", path: "/ui/session", action: PUBLIC },
  { method: "GET", path: "/ui/session", action: PUBLIC },
  { method: "POST", path: "/ui/session/logout", action: PUBLIC },
  // ComfyUI's server API under /comfyui (see ./comfyui/routes.ts).
  ...COMFY_ROUTES,
  // Workers of a cluster, with their own tokens (see ../cluster/routes.ts).
  ...CLUSTER_ROUTES.map((r) => ({ ...r, action: WORKER })),
];

export function agentRouteTable(): RouteTable {
  return new RouteTable(ROUTES);
}
