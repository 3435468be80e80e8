/**
 * The agent's composition root: validates the config, discovers the GPUs, opens the store, recovers
 * and rebuilds the scheduler's state, starts the loop, then serves the API.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { hostname } from "node:os";
import { isAbsolute, join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { ValidationError, issuesFromZod } from "../../config/errors.ts";
import { parsePlatformConfig, type PlatformConfig } from "../../config/index.ts";
import { CostModel, RETRY_LIMITS, parseWorkflow, type WorkflowGraph } from "../../graph/index.ts";
import { schedulerFromConfig } from "../../scheduler/from-config.ts";
import { inventoryFromPools } from "../../scheduler/inventory.ts";
import { Authorizer, RoleBindings } from "../../security/authz/index.ts";
import { identityFromConfig } from "../../security/identity/index.ts";
import { ProcessExecutor, SimulatedExecutor } from "../executors/index.ts";
import { ComfyRelay, ComfyServerPool, ComfyUiExecutor, comfyUiForInventory, type ComfyIntrospection } from "../executors/comfyui/index.ts";
import { NvidiaSmiVramSampler, discoverGpus, type Inventory } from "../inventory/index.ts";
import { openStore, parseDatabase } from "../store/open.ts";
import { buildHttpApi } from "../api/server.ts";
import { AgentLoop } from "./loop.ts";
import type { RunQueue } from "./run-queue.ts";
import { ControlPlane } from "../cluster/control-plane.ts";
import { withSslMode } from "../cluster/database-url.ts";
import { PgStore } from "../store/pg-store.ts";
import type { GpuDevice } from "../inventory/types.ts";
import type { AuditEvent } from "../../security/audit/index.ts";
import { AgentMetrics } from "./metrics.ts";
import { startGpuHistory } from "./gpu-history.ts";
import { createTracing } from "./tracing.ts";
import { measureWithNvidiaSmi } from "./gpu-history.ts";
import { parseConfigWorkflows } from "./submission.ts";
import { AGENT_ACTOR, AuditTrail } from "./audit-trail.ts";
import { openAgentSecurity } from "./security.ts";
import { ArtifactSealer, chooseScratch } from "./sealing.ts";
import { isolateStages } from "./isolation.ts";
import { RunInputsSource, openRunField } from "./sealed-fields.ts";
import { KeyRotationFollower } from "./rewrap.ts";
import { ensurePrivateDirectory, ensurePrivateStoreFiles } from "./private-files.ts";
import { lockAgentDirectories, withMountOverrides } from "./agent-dirs.ts";
import { MODEL_TAGS_KEY_CONTEXT, MODEL_TAGS_KEY_FILE, openModelTags } from "./model-tags.ts";
import canonicalize from "canonicalize";
import { createHash } from "node:crypto";

const AgentOptionsSchema = z
  .object({
    /** Where the store, workspaces, artifacts and logs live; the config's deployment.dataDir when absent. */
    dataDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(0).max(65535).optional(),
    /** Where relative program paths in stage commands are resolved (default: the current directory). */
    commandDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    /** Where stages work (plaintext): a memory-backed folder; default /dev/shm when it is a tmpfs, else DATA_DIR/scratch. */
    scratchDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    inventory: z.enum(["auto", "nvidia-smi", "simulated"]).optional(),
    /** Multiplies simulated stages' estimated durations (1: as estimated). */
    simulatedTimeScale: z.number().min(0).max(1000).optional(),
    bodyLimitBytes: z.number().int().min(1024).optional(),
    /** Arrays and objects nested deeper than this in a request body are refused (default 64). */
    maxJsonDepth: z.number().int().min(2).max(10_000).optional(),
    /** Seconds between SIGTERM and SIGKILL when a stage is stopped. */
    killGraceS: z.number().positive().max(3600).optional(),
    durability: z.enum(["full", "normal"]).optional(),
    /** A postgres:// URL: the store of a cluster's control planes; absent: the embedded SQLite store. */
    database: z.string().min(1).optional(),
    /** Seconds between looks at the keyring's current version (a rotation starts a background rewrap). */
    keyCheckIntervalS: z.number().positive().max(3600).optional(),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
    /** Serve plain HTTP on a non-loopback address (bearer tokens in clear text): only for a trusted network, logged loudly. */
    insecure: z.boolean().optional(),
    /**
     * Run stages without a sandbox, as the agent's own user with its view of the files: stages can then
     * read the keys, tokens and store. Only for a machine where every stage is trusted; logged at error
     * level and recorded in the audit log.
     */
    unsafeSharedIdentity: z.boolean().optional(),
    /** Cluster mode: the URL workers reach this control plane at (default: the URL it listens on). */
    advertiseUrl: z.string().url().optional(),
    /** Cluster mode: this control plane's name (its audit checkpoints go to a folder of that name in the sink); default: the host name. */
    replica: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must be a name of letters, digits, '.', '_' and '-'").optional(),
    /** Cluster mode: where this control plane mounts the shared storage (default: the config's cluster.sharedDir). */
    sharedDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    /** The platform config file, which stages must not see (the CLI passes it). */
    configFile: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    /** The keyring, token, signing key and checkpoint folders given as options (`--keyring` …): they take the place of the config's mount paths. */
    keyringDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    tokensDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    signingKeyDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    auditSinkDir: z.string().refine(isAbsolute, "must be an absolute path").optional(),
    /** Seconds between samples of the GPUs' VRAM history (default 5) and how many seconds of it are kept (default 86400: 24 h). */
    gpuHistoryStepS: z.number().min(0.05).max(3600).optional(),
    gpuHistoryWindowS: z.number().min(1).max(7 * 86400).optional(),
  })
  .strict();

export type AgentOptions = z.infer<typeof AgentOptionsSchema> & { readonly config: PlatformConfig | unknown; readonly logger?: Logger };

export interface RunningAgent {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly config: PlatformConfig;
  readonly inventory: Inventory;
  /** What runs work: the loop itself, or in cluster mode the control plane's view of it. */
  readonly loop: RunQueue;
  /** Cluster mode: this replica's part in the leader election and the workers' registry. */
  readonly controlPlane: ControlPlane | undefined;
  readonly app: FastifyInstance;
  /** ComfyUI servers of this agent (config.comfyui set): its own (single node), or its workers' as the leader hears of them (cluster). */
  readonly comfy: { readonly relay: ComfyRelay; readonly introspection: ComfyIntrospection } | undefined;
  /** Stops serving, stops the stages it runs (they are recovered on the next start) and closes the store. */
  close(): Promise<void>;
}

/** Bodies up to the largest workflow document the graph model accepts, plus room for the envelope. */
export const DEFAULT_BODY_LIMIT_BYTES = 4 * 1024 * 1024 + 64 * 1024;
const COST_MODEL_FILE = "cost-model.json";
/** The most attempts any stage gets, its retry.attempts bounded by it: the limit schedulerFromConfig's scheduler keeps too (see LoopOptions.maxAttempts). */
const MAX_ATTEMPTS = RETRY_LIMITS.maxAttempts;

export async function startAgent(input: AgentOptions): Promise<RunningAgent> {
  // The folders claimed at start (agent-dirs.ts) are let go when the agent has closed, or at once when it fails to start.
  const claims: Array<{ release(): void }> = [];
  const release = () => claims.splice(0).forEach((c) => c.release());
  try {
    const agent = await launchAgent(input, claims);
    const close = agent.close.bind(agent);
    return Object.assign(agent, { close: () => close().finally(release) });
  } catch (err) {
    release();
    throw err;
  }
}

async function launchAgent(input: AgentOptions, claims: Array<{ release(): void }>): Promise<RunningAgent> {
  const { config: rawConfig, logger: givenLogger, ...rest } = input;
  const parsedOptions = AgentOptionsSchema.safeParse(rest);
  if (!parsedOptions.success) throw new ValidationError("agent options", issuesFromZod(parsedOptions.error));
  const options = parsedOptions.data;
  const config = withMountOverrides(parsePlatformConfig(rawConfig), options);
  const workflows = parseConfigWorkflows(config);
  const logger =
    givenLogger ??
    pino({
      level: options.logLevel ?? "info",
      base: { service: "gpufabric-agent", deployment: config.deployment.name },
      redact: { paths: ["req.headers.authorization", "headers.authorization", "authorization"], censor: "[redacted]" },
    });
  const host = options.host ?? config.deployment.listen.host;
  if (!config.security.tls.enabled && !isLoopback(host) && options.insecure === true) {
    logger.error(
      { host, insecure: true },
      `INSECURE: serving plain HTTP on the non-loopback address ${host} (--insecure): bearer tokens and artifacts cross the network unencrypted; enable security.tls instead`
    );
  } else if (!config.security.tls.enabled && !isLoopback(host)) {
    // Bearer tokens in clear text must not leave the machine.
    throw new ValidationError("agent options", [
      { field: "host", message: `'${host}' is not a loopback address and security.tls.enabled is false: enable TLS, or listen on 127.0.0.1 (or, on a trusted network only, start with --insecure)` },
    ]);
  }
  const dataDir = options.dataDir ?? config.deployment.dataDir;
  // Private to the agent's user: the keyring, the store and the sealed artifacts live in it.
  ensurePrivateDirectory(dataDir, logger);
  const replica = config.cluster === null ? undefined : (options.replica ?? hostname());
  // One agent per data directory and per checkpoint folder, claimed before either is written to.
  claims.push(lockAgentDirectories(dataDir, { mountPath: config.security.audit.sink.mountPath, replica }, logger));
  // Encryption and audit are not optional: without a keyring, a signing key and a sink the agent does not start.
  const security = await openAgentSecurity(config, dataDir, logger, replica);
  const audit = new AuditTrail(security.audit, logger);
  try {
    await audit.record({
      actor: AGENT_ACTOR,
      action: "config.load",
      object: `deployment/${config.deployment.name}`,
      outcome: "success",
      data: {
        version: config.version,
        sha256: createHash("sha256").update(canonicalize(config) ?? "").digest("hex"),
        keyVersion: await security.keyring.currentVersion(),
      },
    });
  } catch (err) {
    await security.audit.close().catch(() => undefined);
    throw err;
  }
  const cluster = config.cluster;
  const storeLocation = parseDatabase(options.database === undefined ? undefined : cluster === null ? options.database : withSslMode(options.database, cluster.databaseSslMode), dataDir);
  if (cluster !== null && storeLocation.kind !== "postgres") {
    throw new ValidationError("agent options", [
      { field: "database", message: "the platform config has a cluster section: a control plane needs its PostgreSQL store, --database postgres://… (or GPUFABRIC_DATABASE_URL)" },
    ]);
  }
  const sharedDir = cluster === null ? undefined : (options.sharedDir ?? cluster.sharedDir);
  if (sharedDir !== undefined) mkdirSync(sharedDir, { recursive: true, mode: 0o700 });
  const scratch = chooseScratch(dataDir, options.scratchDir);
  logger.info({ scratch: scratch.dir, inMemory: scratch.inMemory }, scratch.inMemory ? "stage workspaces are in memory (tmpfs)" : "no tmpfs for stage workspaces: they are on disk and deleted as soon as outputs are sealed");
  // A cluster's sealed artifacts and logs live in the storage every worker and control plane mounts.
  const sealer = new ArtifactSealer(security.keyring, sharedDir ?? dataDir, scratch.dir);
  // The store and the audit log keep stand-ins of the model names that sealed documents hold.
  const modelTags = await openModelTags(security.keyring, sharedDir ?? dataDir, logger);
  // A control plane runs no stage: its workers do, each behind its own sandbox.
  const { sandbox, runner } = cluster !== null ? { sandbox: undefined, runner: undefined } : await isolateStages(config, options, { dataDir, scratchDir: scratch.dir }, audit, logger);

  const pool = config.pools.find((p) => p.name === config.deployment.pool)!;
  const clusterDevices: GpuDevice[] = [];
  // In runner mode the GPUs belong to the runner's container: nvidia-smi runs there. A control plane's
  // devices are the pool's, each in service while a worker serves its node.
  const inventory: Inventory =
    cluster !== null
      ? { source: "simulated", devices: clusterDevices, warnings: [] }
      : await discoverGpus({ pool, mode: options.inventory ?? "auto", comfyui: config.comfyui, ...(runner && { run: (file, args, timeoutMs) => runner.run(file, args, timeoutMs) }) });
  for (const warning of inventory.warnings) logger.warn({ source: inventory.source }, warning);
  // The scheduler places stages on the devices actually found (the pool's own when simulated, or in a cluster).
  const scheduledPool = cluster !== null ? pool : {
    ...pool,
    devices: inventory.devices.map((d) => ({
      id: d.id,
      node: d.node,
      index: d.index,
      memoryMiB: d.memoryMiB,
      ...(d.migProfile && { migProfile: d.migProfile }),
    })),
  };
  const scheduledConfig: PlatformConfig = { ...config, pools: config.pools.map((p) => (p.name === pool.name ? scheduledPool : p)) };
  // A control plane's scheduler belongs to its tenure as leader (cluster/control-plane.ts).
  const scheduler = cluster !== null ? undefined : schedulerFromConfig(scheduledConfig);
  const headroomMiB = config.scheduler.headroomMiB;

  const costModel = new CostModel();
  const costFile = join(dataDir, COST_MODEL_FILE);
  if (existsSync(costFile)) {
    try {
      costModel.restore(JSON.parse(readFileSync(costFile, "utf8")));
    } catch (err) {
      logger.warn({ err }, `${costFile} could not be read: starting from the cost table`);
    }
  }
  const saveCostModel = () => {
    writeFileSync(`${costFile}.tmp`, JSON.stringify(costModel.snapshot()));
    renameSync(`${costFile}.tmp`, costFile);
  };

  // Static tokens, and OIDC/JWT bearer tokens when security.auth.oidc is configured.
  const identity = identityFromConfig(config);
  const tokens = identity.tokens;
  if (tokens.size === 0) logger.warn({ dir: config.security.auth.tokens.mountPath }, "no API token hashes found: every request but the probes will be refused");
  const stopWatching = tokens.watch((event) => {
    if (!event.ok) logger.error({ err: event.error }, "token files could not be reloaded; the previous tokens stay in force");
    else if (event.changed) logger.info({ tokens: event.tokens }, "token files reloaded");
  });
  const authenticator = identity.authenticator;
  if (identity.oidc) logger.info({ issuer: config.security.auth.oidc?.issuer }, "OIDC bearer tokens accepted");
  const authorizer = new Authorizer(new RoleBindings(config.tenants));

  // On a thread of its own: statements, group commits and checkpoints stay off the event loop that serves the API.
  if (storeLocation.kind === "sqlite") ensurePrivateStoreFiles(storeLocation.file, logger);
  const store = await openStore(storeLocation, { durability: options.durability ?? "full" });
  logger.info({ store: storeLocation.kind, ...(storeLocation.kind === "postgres" && { schema: storeLocation.schema }) }, storeLocation.kind === "sqlite" ? "store: embedded SQLite in the data directory" : "store: PostgreSQL");
  // Every stage of a run finds the run's inputs, opened from their sealed field, as run-inputs.json.
  const runInputs = new RunInputsSource(security.keyring, async (tenant, runId) =>
    store instanceof PgStore ? store.sealedInputs(tenant, runId) : (await store.getRun(tenant, runId))?.inputs
  );
  let loop: AgentLoop | undefined;
  let controlPlane: ControlPlane | undefined;
  let comfy: RunningAgent["comfy"];
  let stopComfy = (): Promise<void> => Promise.resolve();
  const currentScheduler = () => scheduler ?? controlPlane?.scheduler();
  const metrics = new AgentMetrics({
    store,
    scheduler: currentScheduler,
    devices: inventory.devices,
    loop: () => loop ?? controlPlane?.queue,
    workflows: config.workflows.map((w) => w.name),
    pools: () => {
      const demand = controlPlane?.demand();
      return demand === undefined ? [] : [demand];
    },
    // DCGM-named gauges read the GPUs where this process reads nvidia-smi itself (not a runner's or simulated ones).
    ...(inventory.source === "nvidia-smi" && inventory.nvidiaSmi !== undefined && { measure: () => measureWithNvidiaSmi(inventory.nvidiaSmi!) }),
  });
  const sampler = inventory.nvidiaSmi ? new NvidiaSmiVramSampler(inventory.nvidiaSmi) : undefined;
  // `sealed`: the run's stored document when the caller has read it already.
  const graphOf = async (run: { id: string; tenant: string }, sealed?: unknown): Promise<WorkflowGraph | undefined> => {
    const stored = sealed ?? (await store.getRun(run.tenant, run.id))?.document;
    if (stored === undefined) return undefined;
    const doc = (await openRunField(security.keyring, run.tenant, run.id, "document", stored)) as { workflowRef?: string } | undefined;
    if (doc && typeof doc.workflowRef === "string") return workflows.get(doc.workflowRef);
    try {
      return parseWorkflow(doc);
    } catch {
      return undefined;
    }
  };
  // Off (undefined, no OpenTelemetry module loaded) unless the config names an endpoint.
  const tracing = await createTracing(config.observability.tracing, logger);
  const shared = { costModel, logger, maxAttempts: MAX_ATTEMPTS, commandDir: options.commandDir ?? process.cwd(), observer: metrics, onCostModelChange: saveCostModel, modelTags, audit: (event: AuditEvent) => void audit.note(event), ...(tracing && { tracing }) };
  const rotation = new KeyRotationFollower({
    keyring: security.keyring,
    store,
    tenants: config.tenants,
    artifactsRoot: sealer.artifactsRoot,
    agentFiles: [{ path: join(sharedDir ?? dataDir, MODEL_TAGS_KEY_FILE), context: MODEL_TAGS_KEY_CONTEXT }],
    logsRoot: sealer.logsRoot,
    audit,
    logger,
    checkEveryMs: (options.keyCheckIntervalS ?? 10) * 1000,
  });
  if (cluster !== null) {
    controlPlane = new ControlPlane({
      config,
      store: store as PgStore,
      keys: security.keyring,
      logger,
      audit: shared.audit,
      sharedDir: sharedDir!,
      devices: clusterDevices,
      graphOf,
      // Workers seal outputs and logs with keys the leader wraps for them; the loop records what they report.
      makeLoop: (tenureScheduler, devices, executors) =>
        new AgentLoop({
          ...shared,
          store,
          scheduler: tenureScheduler,
          devices,
          executors,
          openInputs: async (run, _stageId, _attempt, inputs) => {
            const value = await runInputs.open(run);
            return { inputs: [...inputs], ...(value !== undefined && { runInputsValue: value }), release: async () => undefined };
          },
          discardRun: async (runId) => runInputs.forget(runId),
        }),
      // One replica at a time rewraps sealed files after a key rotation: the leader.
      onTenure: (leading) => (leading ? rotation.start() : rotation.stop()),
    });
    // The workers' servers, as the leader hears of them (a follower's answer null: see ClusterComfy).
    if (controlPlane.comfy) comfy = { relay: controlPlane.comfy.relay, introspection: controlPlane.comfy.introspection };
  } else {
    // One ComfyUI server per GPU runs the ComfyUI stages (a control plane's workers run their own).
    const comfyConfig = comfyUiForInventory(config.comfyui, inventory.source);
    const comfyPool =
      comfyConfig === null
        ? undefined
        : new ComfyServerPool({ config: comfyConfig, gpus: inventory.devices.filter((d) => d.migProfile === undefined).map((d) => ({ id: d.id, index: d.index, memoryMiB: d.memoryMiB })), logger });
    comfyPool?.start();
    stopComfy = () => comfyPool?.stop() ?? Promise.resolve();
    if (comfyPool !== undefined) comfy = { relay: new ComfyRelay(), introspection: comfyPool.introspection };
    loop = new AgentLoop({
      ...shared,
      store,
      scheduler: scheduler!,
      devices: inventory.devices,
      executors: {
        process: new ProcessExecutor({
          dataDir: scratch.dir,
          ...(sandbox && { sandbox }),
          ...(runner && { spawner: runner }),
          // A runner's processes are in another container's PID namespace: nvidia-smi's pids mean nothing here.
          ...(sampler && !runner && { vramSampler: sampler }),
          ...(options.killGraceS && { killGraceMs: options.killGraceS * 1000 }),
        }),
        simulated: new SimulatedExecutor({ timeScale: options.simulatedTimeScale ?? 1 }),
        ...(comfyPool && comfy && { comfyui: new ComfyUiExecutor({ dataDir: scratch.dir, pool: comfyPool, relay: comfy.relay, logger }) }),
      },
      sealOutputs: (run, artifacts) => sealer.sealOutputs(run, artifacts),
      openInputs: async (run, stageId, attempt, inputs) => sealer.openInputs(run, stageId, attempt, inputs, await runInputs.open(run)),
      sealLogs: (run, logs) => sealer.sealLogs(run, logs),
      discardWorkspaces: true,
      discardRun: (runId) => {
        runInputs.forget(runId);
        return sealer.discardRun(runId);
      },
    });
  }
  await sealer.clearScratch();
  if (loop !== undefined) {
    const recovered = await loop.start(graphOf);
    await rotation.start();
    logger.info({ ...recovered, gpus: inventory.devices.length, source: inventory.source }, "agent state recovered");
  }

  // Each replica samples what its queue knows (see gpu-history.ts); nvidia-smi is read here only when this process holds the GPUs.
  const gpuHistory = startGpuHistory({
    devices: inventory.devices,
    queue: () => loop ?? controlPlane?.queue,
    ...(inventory.source === "nvidia-smi" && !runner && inventory.nvidiaSmi !== undefined && { nvidiaSmi: inventory.nvidiaSmi }),
    ...(options.gpuHistoryStepS !== undefined && { stepS: options.gpuHistoryStepS }),
    ...(options.gpuHistoryWindowS !== undefined && { windowS: options.gpuHistoryWindowS }),
  });
  let ready = false;
  const app = await buildHttpApi({
    config,
    store,
    loop: loop ?? controlPlane!.queue,
    scheduler: currentScheduler,
    devices: inventory.devices,
    inventorySource: inventory.source,
    gpuHistory,
    submission: { config, workflows, gpus: inventoryFromPools([scheduledPool]), headroomMiB: scheduler?.settings.headroomMiB ?? headroomMiB, costModel },
    ...(controlPlane && { cluster: controlPlane.http, eventPollMs: 1000, demand: () => controlPlane!.demand() }),
    ...(comfy && { comfy }),
    metrics,
    authenticator,
    authorizer,
    audit,
    keys: security.keyring,
    modelTags,
    sealer,
    logger,
    dataDir,
    scratchDir: scratch.dir,
    loopbackOnly: isLoopback(host),
    bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    ...(options.maxJsonDepth !== undefined && { maxJsonDepth: options.maxJsonDepth }),
    isReady: () => ready,
  });
  await app.listen({ host, port: options.port ?? config.deployment.listen.port });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const scheme = config.security.tls.enabled ? "https" : "http";
  const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
  ready = true;
  // Contends for the lead once workers can reach it: its advertised URL is in the lease.
  controlPlane?.start(options.advertiseUrl ?? url);
  logger.info({ url, dataDir, simulated: inventory.source === "simulated", ...(controlPlane && { role: "control-plane" }) }, "agent listening");

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    dataDir,
    config,
    inventory,
    loop: loop ?? controlPlane!.queue,
    controlPlane,
    app,
    comfy,
    close() {
      closing ??= (async () => {
        ready = false;
        stopWatching();
        gpuHistory.stop();
        await app.close();
        // A leader stops its loop, then releases the lease: another replica takes over at once.
        await controlPlane?.close();
        await rotation.stop();
        await loop?.stop();
        // After the loop (and a leader's, in controlPlane.close): the spans of the attempts it stopped go out too.
        await tracing?.shutdown();
        // After the loop: its attempts were interrupted on their servers first.
        await stopComfy();
        runner?.close();
        await sealer.clearScratch().catch((err: unknown) => logger.warn({ err }, "the scratch directory could not be emptied"));
        if (scratch.ownFolder) await rm(scratch.dir, { recursive: true, force: true }).catch(() => undefined);
        await store.close();
        await security.audit.close().catch((err: unknown) => logger.error({ err }, "the audit log could not be sealed on close"));
      })();
      return closing;
    },
  };
}

function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  return ipaddr.isValid(host) && ipaddr.process(host).range() === "loopback";
}
