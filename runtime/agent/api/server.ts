/**
 * The agent's HTTP API (fastify, JSON). Every route declares its action in ROUTES and the table is
 * checked against what is registered, so an undeclared route fails the start. A bearer token is
 * required everywhere but the probes; a tenant sees only its own runs (another tenant's id is 404).
 * This file holds the server and its guards (TLS, body parsing, errors, authentication, audit); the
 * routes themselves are registered group by group from ./routes/.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import websocket from "@fastify/websocket";
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from "fastify";
import { ValidationError } from "../../config/errors.ts";
import { PUBLIC, WORKER, type RouteTable } from "../../security/authz/index.ts";
import { AuditUnavailableError } from "../../security/audit/index.ts";
import { DEFAULT_MAX_JSON_DEPTH } from "../../graph/json-depth.ts";
import { authenticateWorker, registerClusterRoutes } from "../cluster/routes.ts";
import { StoreUnavailableError } from "../store/errors.ts";
import { ApiError } from "../service/api-error.ts";
import type { SubmissionContext } from "../service/submission.ts";
import { SubmissionThread } from "../service/submission-thread.ts";
import { endStreamsOnClose } from "../service/open-streams.ts";
import { checkBrowserHeaders, checkSingleCredential, installJsonParser } from "../service/request-checks.ts";
import type { HttpParts } from "./parts.ts";
import { agentRouteTable } from "./routes.ts";
import { registerProbeRoutes } from "./routes/probes.ts";
import { registerOpenApiRoute } from "./openapi/route.ts";
import { registerRunRoutes } from "./routes/runs.ts";
import { registerArtifactRoutes } from "./routes/artifacts.ts";
import { registerCatalogRoutes } from "./routes/catalog.ts";
import { registerGpuRoutes } from "./routes/gpus.ts";
import { registerFairshareRoutes } from "./routes/fairshare.ts";
import { registerPoolRoutes } from "./routes/pools.ts";
import { registerWorkflowStatsRoutes } from "./routes/workflow-stats.ts";
import { registerAdminRoutes } from "./routes/admin.ts";
import { registerUsageRoutes } from "./routes/usage.ts";
import { credentialOf, registerComfyRoutes } from "./comfyui/routes.ts";
import { registerDashboardAssets } from "./dashboard/assets.ts";
import { registerRunListRoutes } from "./routes/run-list.ts";
import { registerResubmitRoute } from "./routes/resubmit.ts";
import { checkCsrf, cookieCredential, lazySessionKeys, registerSessionRoutes } from "./dashboard/session-routes.ts";
import type { SessionKeys } from "./dashboard/session.ts";

/** A file of a mounted Secret, or a config error naming the field and the file the Secret must hold. */
function readSecretFile(mountPath: string, file: string, field: string): Buffer {
  try {
    return readFileSync(join(mountPath, file));
  } catch (err) {
    throw new ValidationError("platform config", [
      { field: `${field}.mountPath`, message: `cannot read ${join(mountPath, file)} (${(err as NodeJS.ErrnoException).code ?? String(err)}): mount a Secret holding '${file}' there` },
    ]);
  }
}

export async function buildHttpApi(parts: HttpParts): Promise<FastifyInstance> {
  const { config } = parts;
  const tls = config.security.tls;
  // Mutual TLS: the handshake asks for a client certificate but admits callers without one, so the
  // kubelet's probes still pass; the onRequest hook refuses every other route without a verified one.
  const clientCa = tls.enabled && tls.clientCa ? readSecretFile(tls.clientCa.mountPath, "ca.crt", "security.tls.clientCa") : undefined;
  const https =
    tls.enabled && tls.certificate
      ? {
          key: readSecretFile(tls.certificate.mountPath, "tls.key", "security.tls.certificate"),
          cert: readSecretFile(tls.certificate.mountPath, "tls.crt", "security.tls.certificate"),
          ...(clientCa && { ca: clientCa, requestCert: true, rejectUnauthorized: false }),
        }
      : undefined;
  if (tls.enabled && !tls.certificate) {
    throw new ValidationError("platform config", [
      { field: "security.tls.certificate", message: "TLS is enabled but no certificate Secret is named: add one, or disable TLS on loopback only" },
    ]);
  }
  const app = Fastify({
    loggerInstance: parts.logger,
    bodyLimit: parts.bodyLimitBytes,
    // Requests are logged where they matter (submissions, refusals), not twice each.
    logController: new LogController({ disableRequestLogging: true }),
    ...(https && { https }),
  }) as unknown as FastifyInstance;
  installJsonParser(app, parts.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH);
  app.decorateRequest("identity", null);
  app.decorateRequest("largeJsonText", null);
  const submission: SubmissionContext = { ...parts.submission, ...(parts.maxJsonDepth !== undefined && { maxJsonDepth: parts.maxJsonDepth }) };
  const submissionThread = new SubmissionThread(
    { config, gpus: submission.gpus, headroomMiB: submission.headroomMiB, ...(submission.maxJsonDepth !== undefined && { maxJsonDepth: submission.maxJsonDepth }) },
    submission.costModel
  );
  app.addHook("onClose", () => submissionThread.close());
  app.decorateRequest("auditInfo", null);
  const routes = agentRouteTable();
  const registered: Array<{ method: string | string[]; url: string }> = [];
  app.addHook("onRoute", (route) => {
    registered.push({ method: route.method as string | string[], url: route.url });
  });

  installErrorHandlers(app, parts);
  endStreamsOnClose(app);
  const sessionKeys = lazySessionKeys(parts);
  installAuthentication(app, parts, routes, clientCa !== undefined, sessionKeys);
  installAudit(app, parts);

  registerClusterRoutes(app, parts.cluster);
  registerProbeRoutes(app, parts);
  registerOpenApiRoute(app);
  registerRunRoutes(app, parts, { submission, submissionThread });
  registerArtifactRoutes(app, parts);
  registerCatalogRoutes(app, parts);
  registerGpuRoutes(app, parts);
  registerFairshareRoutes(app, parts);
  registerPoolRoutes(app, parts);
  registerWorkflowStatsRoutes(app, parts);
  registerAdminRoutes(app, parts);
  registerUsageRoutes(app, parts);
  registerRunListRoutes(app, parts);
  registerResubmitRoute(app, parts, submission);
  registerDashboardAssets(app);
  registerSessionRoutes(app, parts, sessionKeys);
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  await registerComfyRoutes(app, parts, submission, parts.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH);

  await app.ready();
  routes.assertCovers(registered);
  return app;
}

/** Every error answers in the API's own shape; an unknown route is a 404 of the same shape. */
function installErrorHandlers(app: FastifyInstance, parts: HttpParts): void {
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, request, reply) => {
    let api: ApiError;
    if (err instanceof ApiError) api = err;
    else if (err instanceof ValidationError) api = ApiError.fromIssues(err.issues);
    else if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE")
      api = new ApiError(413, "body-too-large", `the request body is larger than ${parts.bodyLimitBytes} bytes: send a smaller workflow`, "(body)");
    else if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
      api = new ApiError(415, "unsupported-media-type", "send the body as application/json", "content-type");
    else if (err.code === "FST_ERR_CTP_EMPTY_JSON_BODY") api = new ApiError(400, "empty-body", "the body is empty: send a JSON object", "(body)");
    else if (err instanceof SyntaxError || err.code === "FST_ERR_CTP_INVALID_JSON_BODY")
      api = new ApiError(400, "malformed-json", `the body is not valid JSON: ${err.message}`, "(body)");
    else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) api = new ApiError(err.statusCode, "bad-request", err.message);
    else if (err instanceof StoreUnavailableError) {
      // The database is restarting or cut off: nothing was lost, and a retry shortly is the cure.
      request.log.warn({ err: err.message }, "the store is unavailable");
      api = new ApiError(503, "store-unavailable", "the agent's store cannot be reached right now: retry shortly (a submission with an Idempotency-Key is safe to retry)");
      void reply.header("retry-after", "1");
    }
    else {
      request.log.error({ err }, "request failed");
      api = new ApiError(500, "internal", "the agent could not answer this request; it is logged");
    }
    if (api.rule !== undefined && request.auditInfo) request.auditInfo.rule = api.rule;
    if (api.status === 401) void reply.header("www-authenticate", 'Bearer realm="gpufabric"');
    void reply.code(api.status).send(api.body());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new ApiError(404, "not-found", `no route ${request.method} ${request.url.split("?")[0]}`).body());
  });
}

function installAuthentication(app: FastifyInstance, parts: HttpParts, routes: RouteTable, mutualTls: boolean, sessionKeys: () => SessionKeys): void {
  // Authentication before the body is read: an anonymous client cannot make the agent parse anything.
  app.addHook("onRequest", async (request) => {
    request.auditInfo = {};
    checkBrowserHeaders(request, parts.loopbackOnly);
    const encoding = request.headers["content-encoding"];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity") {
      // Compressed bodies are refused outright: a small gzip bomb cannot expand inside the agent.
      throw new ApiError(415, "unsupported-content-encoding", `Content-Encoding '${encoding.slice(0, 40)}' is not accepted: send the body uncompressed`, "content-encoding");
    }
    const template = request.routeOptions.url;
    if (template === undefined) return; // no such route: the not-found handler answers
    const action = routes.actionFor(request.method, template);
    if (action === undefined) throw new ApiError(403, "undeclared-route", `${request.method} ${template} declares no action`);
    if (action === PUBLIC) return;
    if (action === WORKER) {
      // A worker's heartbeats and reports are not audited one by one: joins, losses and key refusals are.
      checkSingleCredential(request);
      const auth = authenticateWorker(parts.cluster, request.headers.authorization);
      if (!auth.ok) {
        await noteAuthFailure(parts, request, template, auth.reason, auth.detail);
        throw new ApiError(auth.status, `unauthenticated:${auth.reason}`, "a worker's route needs the worker's own token: 'Authorization: Bearer <worker token>'");
      }
      request.identity = auth.identity;
      return;
    }
    request.auditInfo.action = action;
    if (mutualTls) await requireClientCertificate(parts, request, template);
    checkSingleCredential(request);
    // The dashboard's session cookie stands in for a missing Authorization header (./dashboard/session-routes.ts).
    const explicit = credentialOf(request, template);
    const session = explicit === undefined ? await cookieCredential(request, sessionKeys) : undefined;
    if (session !== undefined && "refused" in session) {
      await noteAuthFailure(parts, request, template, "session", session.refused);
      throw new ApiError(401, "unauthenticated:session", `the session cookie was refused (${session.refused}): log in again`);
    }
    const auth = await parts.authenticator.authenticate(session?.credential ?? explicit);
    if (!auth.ok) {
      request.log.info({ reason: auth.reason }, "authentication refused");
      await noteAuthFailure(parts, request, template, auth.reason, auth.detail);
      throw new ApiError(
        auth.status,
        auth.reason === "missing" ? "unauthenticated" : `unauthenticated:${auth.reason}`,
        auth.reason === "missing" ? "send 'Authorization: Bearer <token>'" : `the credential was refused (${auth.reason})`
      );
    }
    request.auditInfo.caller = auth.identity;
    if (session !== undefined) checkCsrf(request, session.cookie, sessionKeys);
    const decision = parts.authorizer.authorize(auth.identity, action);
    if (!decision.allowed)
      throw new ApiError(
        decision.status,
        decision.reason,
        decision.reason === "insufficient-role" || decision.reason === "no-role" ? decision.detail : "not allowed"
      );
    request.identity = auth.identity;
  });
}

/** Every refused credential is audited, with what was refused (never the credential itself). */
function noteAuthFailure(parts: HttpParts, request: FastifyRequest, template: string, reason: string, detail: string): Promise<void> {
  return parts.audit.note({
    actor: "anonymous",
    action: "auth.failure",
    outcome: "denied",
    source: request.ip,
    object: auditObject(request),
    data: { reason, detail: detail.slice(0, 500), method: request.method, route: template },
  });
}

async function requireClientCertificate(parts: HttpParts, request: FastifyRequest, template: string): Promise<void> {
  const socket = request.raw.socket as TLSSocket;
  if (socket.authorized) return;
  const reason = socket.authorizationError === null || socket.authorizationError === undefined ? "no client certificate" : String(socket.authorizationError);
  request.log.info({ reason }, "client certificate refused");
  await noteAuthFailure(parts, request, template, "client-certificate", reason);
  throw new ApiError(401, "unauthenticated:client-certificate", `this agent requires mutual TLS: present a client certificate signed by its client CA (${reason})`);
}

function installAudit(app: FastifyInstance, parts: HttpParts): void {
  // Fail closed: a change, or an artifact read, that cannot be recorded does not happen.
  app.addHook("preHandler", async (request) => {
    const info = request.auditInfo;
    const identity = request.identity;
    if (!info?.action || identity === null || !(request.method !== "GET" || info.action === "artifacts:read")) return;
    try {
      await parts.audit.record({
        actor: identity.subject,
        tenant: identity.tenant,
        action: info.action,
        object: auditObject(request),
        outcome: "success",
        source: request.ip,
        data: { phase: "authorized", method: request.method, route: request.routeOptions.url ?? null },
      });
    } catch (err) {
      if (!(err instanceof AuditUnavailableError)) throw err;
      throw new ApiError(503, "audit-unavailable", "the audit log cannot record this request, so the agent refuses it (fail closed): see the agent's log");
    }
  });
  // Every answered request, probes aside, is recorded with its outcome.
  app.addHook("onResponse", async (request, reply) => {
    const info = request.auditInfo ?? {};
    const template = request.routeOptions.url;
    if (template !== undefined && info.action === undefined) return; // a public probe
    const caller = request.identity ?? info.caller;
    void parts.audit.note({
      actor: caller?.subject ?? "anonymous",
      tenant: caller?.tenant ?? null,
      action: info.action ?? "api.no-route",
      object: info.object ?? auditObject(request),
      outcome: outcomeOf(reply.statusCode),
      source: request.ip,
      data: {
        phase: "answered",
        method: request.method,
        route: template ?? request.url.split("?")[0]!.slice(0, 256),
        status: reply.statusCode,
        ...(info.rule !== undefined && { rule: info.rule }),
      },
    });
  });
}

/** `run/<id>[/artifact/<name>|/stage/<id>]` from the route's parameters, as the client sent them (capped). */
function auditObject(request: FastifyRequest): string | null {
  const params = (request.params ?? {}) as Record<string, string | undefined>;
  if (params.runId === undefined) return null;
  let object = `run/${params.runId}`;
  if (params.name !== undefined) object += `/artifact/${params.name}`;
  if (params.stageId !== undefined) object += `/stage/${params.stageId}`;
  return object.slice(0, 1000);
}

function outcomeOf(status: number): "success" | "denied" | "failure" | "error" {
  if (status < 400) return "success";
  if (status === 401 || status === 403 || status === 404) return "denied";
  return status >= 500 ? "error" : "failure";
}
