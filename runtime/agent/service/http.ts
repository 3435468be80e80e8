/**
 * The agent's HTTP API (fastify, JSON). Every route declares its action in ROUTES and the table is
 * checked against what is registered, so an undeclared route fails the start. A bearer token is
 * required everywhere but the probes; a tenant sees only its own runs (another tenant's id is 404).
 */
import { readFileSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import type { TLSSocket } from "node:tls";
import Fastify, { LogController, type FastifyInstance, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { ValidationError } from "../../config/errors.ts";
import type { PlatformConfig } from "../../config/schema.ts";
import type { Scheduler, WaitReason } from "../../scheduler/index.ts";
import type { Authenticator, Identity } from "../../security/identity/index.ts";
import { PUBLIC, WORKER, type Authorizer } from "../../security/authz/index.ts";
import { authenticateWorker, registerClusterRoutes, type ClusterHttp } from "../cluster/routes.ts";
import { checkName, openInside, UnsafePathError } from "../../security/names/index.ts";
import type { GpuDevice } from "../inventory/types.ts";
import type { RunDetail, RunStatus, Store } from "../store/types.ts";
import { RUN_STATUSES } from "../store/types.ts";
import { StoreUnavailableError } from "../store/errors.ts";
import { AuditUnavailableError } from "../../security/audit/index.ts";
import { ApiError } from "./api-error.ts";
import type { AuditTrail } from "./audit-trail.ts";
import type { KeyProvider } from "../../security/crypto/index.ts";
import type { ArtifactSealer } from "./sealing.ts";
import { sealRunFields } from "./sealed-fields.ts";
import type { ModelTags } from "./model-tags.ts";
import type { RunQueue } from "./run-queue.ts";
import { scheduledMiB, type AgentMetrics } from "./metrics.ts";
import { agentRouteTable } from "./routes.ts";
import { prepareRun, type SubmissionContext } from "./submission.ts";
import { SubmissionThread } from "./submission-thread.ts";
import { checkBrowserHeaders, checkSingleCredential, installJsonParser } from "./request-checks.ts";
import { eventId, streamEvents } from "./event-stream.ts";
import { DEFAULT_MAX_JSON_DEPTH } from "../../graph/json-depth.ts";

declare module "fastify" {
  interface FastifyRequest {
    identity: Identity | null;
    /** What the audit entry of this request says beyond the route (set as the request is handled). */
    auditInfo: AuditInfo | null;
    /** The JSON text of a body large enough to be validated on the submission thread. */
    largeJsonText: string | null;
  }
}

interface AuditInfo {
  action?: string;
  /** The verified caller, also when authorization then refused it. */
  caller?: Identity;
  object?: string;
  rule?: string;
}

export interface HttpParts {
  readonly config: PlatformConfig;
  readonly store: Store;
  readonly loop: RunQueue;
  /** The scheduler of this process, while it has one (a control plane that does not lead has none). */
  readonly scheduler: () => Scheduler | undefined;
  readonly devices: readonly GpuDevice[];
  readonly inventorySource: "nvidia-smi" | "simulated";
  readonly submission: SubmissionContext;
  readonly metrics: AgentMetrics;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly audit: AuditTrail;
  /** Seals sensitive fields before they reach the store. */
  readonly keys: KeyProvider;
  /** Stand-ins the store keeps instead of the model names of sealed documents. */
  readonly modelTags?: ModelTags;
  readonly sealer: ArtifactSealer;
  readonly logger: Logger;
  readonly dataDir: string;
  /** Where stages work and their logs are kept (memory where the machine allows). */
  readonly scratchDir: string;
  /** Listening on a loopback address only: then the Host header must name loopback too (DNS rebinding). */
  readonly loopbackOnly: boolean;
  readonly bodyLimitBytes: number;
  /** Arrays and objects nested deeper than this in a body are refused before anything walks them. */
  readonly maxJsonDepth?: number;
  readonly isReady: () => boolean;
  /** How often an event stream reads the store for changes made elsewhere (cluster mode), in ms. */
  readonly eventPollMs?: number;
  /** Cluster mode: the workers' routes and their authentication. */
  readonly cluster?: ClusterHttp;
}

const LOG_TAIL_BYTES = 256 * 1024;
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".yaml": "text/yaml; charset=utf-8",
};

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
  const { config, store, loop } = parts;
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
        await noteAuthFailure(request, template, auth.reason, auth.detail);
        throw new ApiError(auth.status, `unauthenticated:${auth.reason}`, "a worker's route needs the worker's own token: 'Authorization: Bearer <worker token>'");
      }
      request.identity = auth.identity;
      return;
    }
    request.auditInfo.action = action;
    if (clientCa) await requireClientCertificate(request, template);
    checkSingleCredential(request);
    const auth = await parts.authenticator.authenticate(request.headers.authorization);
    if (!auth.ok) {
      request.log.info({ reason: auth.reason }, "authentication refused");
      await noteAuthFailure(request, template, auth.reason, auth.detail);
      throw new ApiError(
        auth.status,
        auth.reason === "missing" ? "unauthenticated" : `unauthenticated:${auth.reason}`,
        auth.reason === "missing" ? "send 'Authorization: Bearer <token>'" : `the credential was refused (${auth.reason})`
      );
    }
    request.auditInfo.caller = auth.identity;
    const decision = parts.authorizer.authorize(auth.identity, action);
    if (!decision.allowed)
      throw new ApiError(
        decision.status,
        decision.reason,
        decision.reason === "insufficient-role" || decision.reason === "no-role" ? decision.detail : "not allowed"
      );
    request.identity = auth.identity;
  });

  /** Every refused credential is audited, with what was refused (never the credential itself). */
  function noteAuthFailure(request: FastifyRequest, template: string, reason: string, detail: string): Promise<void> {
    return parts.audit.note({
      actor: "anonymous",
      action: "auth.failure",
      outcome: "denied",
      source: request.ip,
      object: auditObject(request),
      data: { reason, detail: detail.slice(0, 500), method: request.method, route: template },
    });
  }

  async function requireClientCertificate(request: FastifyRequest, template: string): Promise<void> {
    const socket = request.raw.socket as TLSSocket;
    if (socket.authorized) return;
    const reason = socket.authorizationError === null || socket.authorizationError === undefined ? "no client certificate" : String(socket.authorizationError);
    request.log.info({ reason }, "client certificate refused");
    await noteAuthFailure(request, template, "client-certificate", reason);
    throw new ApiError(401, "unauthenticated:client-certificate", `this agent requires mutual TLS: present a client certificate signed by its client CA (${reason})`);
  }

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

  registerClusterRoutes(app, parts.cluster);
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) =>
    parts.isReady() ? { status: "ready" } : reply.code(503).send(new ApiError(503, "not-ready", "the agent is starting or stopping").body())
  );

  app.post("/v1/runs", async (request, reply) => {
    const identity = request.identity!;
    const keyHeader = request.headers["idempotency-key"];
    let idempotencyKey: string | undefined;
    if (keyHeader !== undefined) {
      const check = checkName("idempotencyKey", Array.isArray(keyHeader) ? keyHeader.join(",") : keyHeader);
      if (!check.ok) throw new ApiError(400, "invalid-request", `Idempotency-Key: ${check.problem}`, "Idempotency-Key");
      idempotencyKey = check.name;
    }
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
    // The submitter is recorded so that it, and not every submitter of the tenant, may cancel the run.
    const newRun = { ...prepared.newRun, submittedBy: identity.subject };
    const { run, created } = await store.createRun(await sealRunFields(parts.keys, newRun, parts.modelTags));
    request.auditInfo!.object = `run/${run.id}`;
    if (created) {
      parts.metrics.runSubmitted(identity.tenant);
      loop.accept(run, prepared.stages, prepared.graph.format === "comfyui" ? prepared.graph : undefined);
    }
    request.log.debug(
      { runId: run.id, tenant: run.tenant, workflow: run.workflow, created },
      created ? "run accepted" : "run resubmitted with its idempotency key"
    );
    return reply.code(202).header("location", `/v1/runs/${run.id}`).header("idempotent-replayed", String(!created)).send({ id: run.id, status: run.status });
  });

  app.get<{ Querystring: { status?: string; limit?: string } }>("/v1/runs", async (request) => {
    const { status, limit } = request.query;
    if (status !== undefined && !(RUN_STATUSES as readonly string[]).includes(status)) {
      throw new ApiError(400, "invalid-request", `status: must be one of ${RUN_STATUSES.join(", ")}`, "status");
    }
    const n = limit === undefined ? 100 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new ApiError(400, "invalid-request", "limit: must be a whole number from 1 to 1000", "limit");
    const runs = await store.listRuns(request.identity!.tenant, { ...(status && { status: status as RunStatus }), limit: n });
    return {
      runs: runs.map((r) => ({
        id: r.id,
        status: r.status,
        workflow: r.workflow,
        priority: r.priority,
        submittedBy: r.submittedBy,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
      })),
    };
  });

  const loadRun = async (request: FastifyRequest<{ Params: { runId: string } }>): Promise<RunDetail> => {
    const id = validId("run", request.params.runId, "runId");
    const detail = await store.getRun(request.identity!.tenant, id);
    if (detail === undefined) throw new ApiError(404, "not-found", `no run '${id}'`, "runId");
    return detail;
  };

  app.get<{ Params: { runId: string } }>("/v1/runs/:runId", async (request) => runView(await loadRun(request), loop, parts.devices));

  app.post<{ Params: { runId: string } }>("/v1/runs/:runId/cancel", async (request, reply) => {
    const id = validId("run", request.params.runId, "runId");
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

  app.get<{ Params: { runId: string }; Querystring: { after?: string } }>("/v1/runs/:runId/events", async (request, reply) => {
    const tenant = request.identity!.tenant;
    const id = validId("run", request.params.runId, "runId");
    const fromHeader = request.headers["last-event-id"];
    const field = typeof fromHeader === "string" ? "Last-Event-ID" : "after";
    const after = eventId(typeof fromHeader === "string" ? fromHeader : request.query.after ?? "0", field);
    if ((await store.eventsSince(tenant, id, after, 1)) === undefined) throw new ApiError(404, "not-found", `no run '${id}'`, "runId");
    streamEvents(request, reply, store, loop, tenant, id, after, parts.eventPollMs);
  });

  app.get<{ Params: { runId: string; name: string }; Querystring: { stage?: string } }>("/v1/runs/:runId/artifacts/:name", async (request, reply) => {
    const detail = await loadRun(request);
    const name = request.params.name;
    const stage = request.query.stage;
    const matches = detail.artifacts.filter((a) => a.name === name && (stage === undefined || a.stageId === stage));
    if (matches.length === 0)
      throw new ApiError(404, "not-found", `run '${detail.run.id}' has no artifact '${name}'${stage ? ` from stage '${stage}'` : ""}`, "name");
    if (matches.length > 1) {
      throw new ApiError(409, "ambiguous-artifact", `stages ${matches.map((a) => a.stageId).join(", ")} each wrote '${name}': add ?stage=<stage id>`, "stage");
    }
    const artifact = matches[0]!;
    const root = parts.sealer.artifactsRoot;
    let handle;
    try {
      handle = await openInside(root, relative(root, artifact.path).split(sep));
    } catch (err) {
      if (err instanceof UnsafePathError || (err as NodeJS.ErrnoException).code === "ENOENT") {
        request.log.warn({ err, runId: detail.run.id, artifact: name }, "artifact file refused or missing");
        throw new ApiError(404, "not-found", `the file of artifact '${name}' is not available`, "name");
      }
      throw err;
    }
    return reply
      .header("content-type", CONTENT_TYPES[extname(name).toLowerCase()] ?? "application/octet-stream")
      .header("content-length", String(artifact.bytes))
      .header("x-content-sha256", artifact.sha256)
      .send(parts.sealer.openArtifact(detail.run.tenant, artifact.path, handle));
  });

  app.get<{ Params: { runId: string; stageId: string }; Querystring: { attempt?: string } }>("/v1/runs/:runId/stages/:stageId/logs", async (request) => {
    const detail = await loadRun(request);
    const stageId = validId("stage", request.params.stageId, "stageId");
    const attempts = detail.attempts.filter((a) => a.stageId === stageId).sort((a, b) => a.number - b.number);
    if (!detail.stages.some((s) => s.stageId === stageId)) throw new ApiError(404, "not-found", `run '${detail.run.id}' has no stage '${stageId}'`, "stageId");
    const wanted = request.query.attempt === undefined ? attempts.at(-1) : attempts.find((a) => String(a.number) === request.query.attempt);
    if (wanted === undefined)
      throw new ApiError(404, "not-found", `stage '${stageId}' has no attempt${request.query.attempt ? ` ${request.query.attempt}` : " yet"}`, "attempt");
    const [stdout, stderr] = await Promise.all(
      (["stdout", "stderr"] as const).map((stream) => readLogTail(parts, detail.run.tenant, detail.run.id, stageId, `${wanted.number}.${stream}.log`))
    );
    return {
      stage: stageId,
      attempt: wanted.number,
      simulated: wanted.simulated,
      stdout: stdout!.text,
      stderr: stderr!.text,
      truncated: stdout!.truncated || stderr!.truncated,
    };
  });

  app.get("/v1/workflows", async (request) => ({
    workflows: config.workflows
      .filter((w) => w.tenants.includes(request.identity!.tenant))
      .map((w) => ({ name: w.name, format: w.format, priority: w.priority, stages: parts.submission.workflows.get(w.name)?.stages.length ?? 0 })),
  }));

  app.get("/v1/gpus", async (request) => {
    const tenant = request.identity!.tenant;
    const used = scheduledMiB(loop, parts.devices);
    const running = loop.runningStages();
    const indexOf = new Map<string, number>();
    const scheduler = parts.scheduler();
    if (scheduler) for (let i = 0; i < scheduler.gpuCount; i++) indexOf.set(scheduler.gpuId(i), i);
    // Model names come from sealed documents: a caller sees by name only the models its own active runs
    // use; any other tenant's appear as their stand-ins.
    const own = new Set<string>();
    for (const run of loop.activeRunsOf(tenant)) for (const stage of run.stages.values()) if (stage.resources.model) own.add(stage.resources.model);
    const shown = (model: string) => (own.has(model) || parts.modelTags === undefined ? model : parts.modelTags.tag(model));
    return {
      source: parts.inventorySource,
      gpus: parts.devices.map((d) => ({
        id: d.id,
        node: d.node,
        name: d.name,
        uuid: d.uuid,
        simulated: d.simulated,
        memoryMiB: d.memoryMiB,
        usedMiB: used.get(d.id) ?? 0,
        freeMiB: Math.max(0, d.memoryMiB - (used.get(d.id) ?? 0)),
        residentModels: scheduler && indexOf.has(d.id) ? scheduler.residentModels(indexOf.get(d.id)!).map(shown) : [],
        running: running
          .filter((s) => s.gpus.includes(d.id))
          .map((s) => (s.tenant === tenant ? { runId: s.runId, stageId: s.stageId, simulated: s.simulated } : { tenant: "another tenant" })),
      })),
    };
  });

  app.get("/v1/queue", async (request) => {
    const tenant = request.identity!.tenant;
    const waiting: Array<{ runId: string; stageId: string; reason: string; wait: WaitReason }> = [];
    for (const run of loop.activeRunsOf(tenant)) {
      for (const stageId of run.stages.keys()) {
        const reason = loop.explain(run.id, stageId);
        if (reason !== null) waiting.push({ runId: run.id, stageId, reason: describeWait(reason), wait: reason });
        if (waiting.length >= 1000) break;
      }
      if (waiting.length >= 1000) break;
    }
    const depth = await store.queueDepth();
    return { tenant, activeRuns: depth.byTenant[tenant]?.activeRuns ?? 0, stages: depth.byTenant[tenant] ?? null, waiting };
  });

  app.get("/metrics", async (request, reply) =>
    reply.header("content-type", parts.metrics.registry.contentType).send(await parts.metrics.textFor(request.identity!.tenant))
  );

  await app.ready();
  routes.assertCovers(registered);
  return app;
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

function validId(kind: "run" | "stage", value: string, field: string): string {
  const check = checkName(kind, value);
  if (!check.ok) throw new ApiError(400, "invalid-request", `${field}: ${check.problem}`, field);
  return check.name;
}

/** An ended attempt's log is sealed in the data directory; a running one's is still in the scratch directory. */
async function readLogTail(parts: HttpParts, tenant: string, runId: string, stageId: string, file: string): Promise<{ text: string; truncated: boolean }> {
  let handle;
  try {
    handle = await openInside(parts.sealer.logsRoot, [runId, stageId, file]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return readTail(join(parts.scratchDir, "logs"), [runId, stageId, file]);
    throw err;
  }
  try {
    const plain = await parts.sealer.readLog(tenant, runId, stageId, file, handle);
    const tail = plain.subarray(Math.max(0, plain.length - LOG_TAIL_BYTES));
    return { text: tail.toString("utf8"), truncated: plain.length > tail.length };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function readTail(root: string, names: string[]): Promise<{ text: string; truncated: boolean }> {
  let handle;
  try {
    handle = await openInside(root, names);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { text: "", truncated: false };
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, LOG_TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return { text: buffer.toString("utf8"), truncated: size > length };
  } finally {
    await handle.close();
  }
}

/** The run as clients see it: stages with their latest attempt, artifacts, and what is simulated. */
export function runView(detail: RunDetail, loop: RunQueue, devices: readonly GpuDevice[]) {
  const simulatedDevices = new Set(devices.filter((d) => d.simulated).map((d) => d.id));
  const latestAttempt = new Map<string, RunDetail["attempts"][number]>();
  for (const a of detail.attempts) if ((latestAttempt.get(a.stageId)?.number ?? 0) < a.number) latestAttempt.set(a.stageId, a);
  const stages = detail.stages.map((s) => {
    const latest = latestAttempt.get(s.stageId);
    const noCommand = !(s.spec.run && s.spec.run.command.length > 0);
    const simulated = Boolean(latest?.simulated) || (latest !== undefined && (noCommand || latest.gpus.some((g) => simulatedDevices.has(g))));
    const wait = s.status === "waiting" || s.status === "ready" ? loop.explain(detail.run.id, s.stageId) : null;
    return {
      id: s.stageId,
      status: s.status,
      needs: s.needs,
      gpus: latest?.gpus ?? [],
      /** The node of its latest attempt's GPUs (a cluster's worker node), null before it was placed. */
      node: latest?.gpus[0] === undefined ? null : (devices.find((d) => d.id === latest.gpus[0])?.node ?? null),
      attempts: s.attempts,
      startedAt: latest?.startedAt ?? null,
      finishedAt: latest?.finishedAt ?? null,
      exitCode: latest?.exitCode ?? null,
      reason: latest?.reason ?? (wait ? describeWait(wait) : null),
      executor: noCommand ? "simulated" : "process",
      simulated,
      ...(latest?.peakVramMiB != null && { peakVramMiB: latest.peakVramMiB }),
    };
  });
  return {
    id: detail.run.id,
    status: detail.run.status,
    tenant: detail.run.tenant,
    workflow: detail.run.workflow,
    format: detail.run.format,
    priority: detail.run.priority,
    submittedBy: detail.run.submittedBy,
    createdAt: detail.run.createdAt,
    updatedAt: detail.run.updatedAt,
    simulated: stages.some((s) => s.simulated),
    stages,
    artifacts: detail.artifacts.map((a) => ({ name: a.name, stage: a.stageId, bytes: a.bytes, sha256: a.sha256 })),
  };
}

export function describeWait(reason: WaitReason): string {
  switch (reason.code) {
    case "dependencies":
      return `waiting for ${reason.pending.join(", ")}`;
    case "no-fit":
      return `no GPU has ${reason.needMiB} MiB free now (best ${reason.bestAvailableMiB} MiB, ${reason.freeGpus} GPU(s) free)`;
    case "gang":
      return `needs ${reason.gpus} GPUs with ${reason.needMiB} MiB on one node (best node has ${reason.bestNodeFitting})`;
    case "quota":
      return `tenant ${reason.resource} quota: holds ${reason.held}, asks ${reason.requested}, quota ${reason.quota}`;
    case "priority":
      return `${reason.ahead} stage(s) ahead at level ${reason.level}`;
    case "reserved":
      return `GPUs kept for stage ${reason.forStage}`;
    case "affinity":
      return `waiting for GPU ${reason.gpu} that holds model ${reason.model} (free in ~${reason.expectedFreeInS.toFixed(1)} s)`;
    case "kept-for-larger":
      return `the free GPUs are kept for ${reason.waitingLarger} larger waiting stage(s)`;
  }
}
