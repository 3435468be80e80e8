/**
 * ComfyUI's server API under the agent's `/comfyui` base path, bare and with ComfyUI's `/api` prefix
 * (its web frontend uses one, its example scripts the other), so clients work unchanged when their
 * server address is `host:port/comfyui`. Identity and tenancy are the agent's: a bearer token, HTTP
 * basic with the token as password, or (for WebSocket clients that cannot set headers) `?token=`.
 */
import { dirname, join } from "node:path";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { RouteDeclaration } from "../../../security/authz/index.ts";
import { scanJsonTextDepth, formatJsonPath, tooDeepMessage } from "../../../graph/json-depth.ts";
import { ApiError } from "../../service/api-error.ts";
import type { SubmissionContext } from "../../service/submission.ts";
import type { HttpParts } from "../parts.ts";
import { HiddenHistory, type ComfyApi } from "./context.ts";
import { registerFileRoutes } from "./file-routes.ts";
import { registerHistoryRoutes } from "./history-routes.ts";
import { registerInfoRoutes } from "./info-routes.ts";
import { registerPromptRoutes } from "./prompt-routes.ts";
import { ComfyPrompts } from "./prompts.ts";
import { ComfyUploads } from "./uploads.ts";
import { ComfyWsHub } from "./ws-hub.ts";

export const COMFY_BASE = "/comfyui";
const PREFIXES = [COMFY_BASE, `${COMFY_BASE}/api`] as const;

const ROUTES: ReadonlyArray<Omit<RouteDeclaration, "path"> & { path: string }> = [
  { method: "POST", path: "/prompt", action: "runs:submit" },
  { method: "GET", path: "/prompt", action: "runs:read" },
  { method: "GET", path: "/queue", action: "runs:read" },
  { method: "POST", path: "/queue", action: "runs:cancel" },
  { method: "POST", path: "/interrupt", action: "runs:cancel" },
  { method: "GET", path: "/history", action: "runs:read" },
  { method: "GET", path: "/history/:promptId", action: "runs:read" },
  { method: "POST", path: "/history", action: "history:write" },
  { method: "GET", path: "/view", action: "artifacts:read" },
  { method: "POST", path: "/upload/image", action: "uploads:write" },
  { method: "GET", path: "/object_info", action: "workflows:read" },
  { method: "GET", path: "/object_info/:nodeClass", action: "workflows:read" },
  { method: "GET", path: "/models", action: "workflows:read" },
  { method: "GET", path: "/models/:folder", action: "workflows:read" },
  { method: "GET", path: "/embeddings", action: "workflows:read" },
  { method: "GET", path: "/extensions", action: "workflows:read" },
  { method: "GET", path: "/features", action: "workflows:read" },
  { method: "GET", path: "/system_stats", action: "gpus:read" },
  { method: "GET", path: "/ws", action: "runs:read" },
];

/** Every ComfyUI route under both prefixes, for the agent's route table. */
export const COMFY_ROUTES: readonly RouteDeclaration[] = PREFIXES.flatMap((prefix) => ROUTES.map((r) => ({ ...r, path: `${prefix}${r.path}` })));

/**
 * The credential of a request as the authenticator takes it (`Bearer <token>`): HTTP basic carries the
 * token as its password; a WebSocket upgrade of the ComfyUI API may carry it as `?token=`.
 */
export function credentialOf(request: FastifyRequest, template: string): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (basic === null || !template.startsWith(COMFY_BASE)) return header;
    const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return `Bearer ${colon >= 0 ? decoded.slice(colon + 1) : decoded}`;
  }
  const token = (request.query as Record<string, unknown> | undefined)?.token;
  if (typeof token === "string" && token !== "" && PREFIXES.some((p) => template === `${p}/ws`)) return `Bearer ${token}`;
  return undefined;
}

/** Registers the ComfyUI API; returns the socket hub (closed with the server). */
export async function registerComfyRoutes(app: FastifyInstance, parts: HttpParts, submission: SubmissionContext, maxJsonDepth: number): Promise<ComfyWsHub> {
  const root = join(dirname(parts.sealer.artifactsRoot), "comfyui");
  const prompts = new ComfyPrompts(parts);
  const hub = new ComfyWsHub(parts.store, parts.loop, prompts, parts.comfy?.relay, parts.logger, parts.eventPollMs);
  let counter = 0;
  const api: ComfyApi = {
    parts,
    submission,
    prompts,
    uploads: new ComfyUploads(parts.keys, join(root, "uploads")),
    hub,
    hidden: new HiddenHistory(join(root, "history")),
    nextNumber: () => ++counter,
  };
  app.addHook("onClose", async () => hub.close());
  for (const prefix of PREFIXES) {
    await app.register(
      async (scope) => {
        installBodyParsers(scope, maxJsonDepth);
        registerPromptRoutes(scope, api);
        registerHistoryRoutes(scope, api);
        registerFileRoutes(scope, api);
        registerInfoRoutes(scope, api);
        scope.get<{ Querystring: { clientId?: string } }>("/ws", { websocket: true }, (socket, request) => {
          const clientId = typeof request.query.clientId === "string" && request.query.clientId !== "" ? request.query.clientId.slice(0, 256) : crypto.randomUUID().replaceAll("-", "");
          void hub.connect(socket, request.identity!.tenant, clientId).catch((err: unknown) => {
            request.log.warn({ err }, "a ComfyUI socket could not be set up");
            socket.close(1011, "the agent could not set up this connection");
          });
        });
      },
      { prefix },
    );
  }
  return hub;
}

/**
 * ComfyUI reads every body as JSON whatever its Content-Type, and its own example scripts send
 * `application/x-www-form-urlencoded` (Python's default): so do these routes. Uploads are multipart.
 */
function installBodyParsers(scope: FastifyInstance, maxDepth: number): void {
  const parseJson = (text: string): unknown => {
    if (text.trim() === "") return {};
    const tooDeep = scanJsonTextDepth(text, maxDepth);
    if (tooDeep !== undefined) {
      const field = formatJsonPath(tooDeep.path);
      throw new ApiError(400, "too-deep", `${field}: ${tooDeepMessage(tooDeep)}`, field);
    }
    return JSON.parse(text, (key, value: unknown) => (key === "__proto__" ? undefined : value));
  };
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("multipart/form-data", { parseAs: "buffer" }, async (request: FastifyRequest, body: Buffer) => {
    try {
      return await new Response(body, { headers: { "content-type": String(request.headers["content-type"]) } }).formData();
    } catch (err) {
      throw new ApiError(400, "invalid-request", `the multipart body could not be read: ${(err as Error).message}`, "(body)");
    }
  });
  scope.addContentTypeParser("*", { parseAs: "string" }, async (_request: FastifyRequest, body: string) => parseJson(body));
}
