/**
 * The agent's composition root: validates the config, discovers the GPUs, opens the store, recovers
 * and rebuilds the scheduler's state, starts the loop, then serves the API.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { ValidationError, issuesFromZod } from "../../config/errors.ts";
import { parsePlatformConfig, type PlatformConfig } from "../../config/index.ts";
import { CostModel, parseWorkflow, type WorkflowGraph } from "../../graph/index.ts";
import { schedulerFromConfig } from "../../scheduler/from-config.ts";
import { inventoryFromPools } from "../../scheduler/inventory.ts";
import { Authorizer, RoleBindings } from "../../security/authz/index.ts";
import { identityFromConfig } from "../../security/identity/index.ts";
import { ProcessExecutor, SimulatedExecutor } from "../executors/index.ts";
import { NvidiaSmiVramSampler, discoverGpus, type Inventory } from "../inventory/index.ts";
import { openStore, parseDatabase } from "../store/open.ts";
import { buildHttpApi } from "./http.ts";
import { AgentLoop } from "./loop.ts";
import { AgentMetrics } from "./metrics.ts";
import { parseConfigWorkflows } from "./submission.ts";
import { AGENT_ACTOR, AuditTrail } from "./audit-trail.ts";
import { openAgentSecurity } from "./security.ts";
import { ArtifactSealer, chooseScratch } from "./sealing.ts";
import { isolateStages } from "./isolation.ts";
import { RunInputsSource, openRunField } from "./sealed-fields.ts";
import { KeyRotationFollower } from "./rewrap.ts";
import { ensurePrivateDirectory, ensurePrivateStoreFiles } from "./private-files.ts";
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
    /** The platform config file, which stages must not see (the CLI passes it). */
    configFile: z.string().refine(isAbsolute, "must be an absolute path").optional(),
  })
  .strict();

export type AgentOptions = z.infer<typeof AgentOptionsSchema> & { readonly config: PlatformConfig | unknown; readonly logger?: Logger };

export interface RunningAgent {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly config: PlatformConfig;
  readonly inventory: Inventory;
  readonly loop: AgentLoop;
  readonly app: FastifyInstance;
  /** Stops serving, stops the stages it runs (they are recovered on the next start) and closes the store. */
  close(): Promise<void>;
}

/** Bodies up to the largest workflow document the graph model accepts, plus room for the envelope. */
export const DEFAULT_BODY_LIMIT_BYTES = 4 * 1024 * 1024 + 64 * 1024;
const COST_MODEL_FILE = "cost-model.json";
/** Attempts per stage: the attempt limit schedulerFromConfig's scheduler keeps (see LoopOptions.maxAttempts). */
const MAX_ATTEMPTS = 3;

export async function startAgent(input: AgentOptions): Promise<RunningAgent> {
  const { config: rawConfig, logger: givenLogger, ...rest } = input;
  const parsedOptions = AgentOptionsSchema.safeParse(rest);
  if (!parsedOptions.success) throw new ValidationError("agent options", issuesFromZod(parsedOptions.error));
  const options = parsedOptions.data;
  const config = parsePlatformConfig(rawConfig);
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
  // Encryption and audit are not optional: without a keyring, a signing key and a sink the agent does not start.
  const security = await openAgentSecurity(config, dataDir, logger);
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
  const scratch = chooseScratch(dataDir, options.scratchDir);
  logger.info({ scratch: scratch.dir, inMemory: scratch.inMemory }, scratch.inMemory ? "stage workspaces are in memory (tmpfs)" : "no tmpfs for stage workspaces: they are on disk and deleted as soon as outputs are sealed");
  const sealer = new ArtifactSealer(security.keyring, dataDir, scratch.dir);
  // The store and the audit log keep stand-ins of the model names that sealed documents hold.
  const modelTags = await openModelTags(security.keyring, dataDir, logger);
  const { sandbox, runner } = await isolateStages(config, options, { dataDir, scratchDir: scratch.dir }, audit, logger);

  const pool = config.pools.find((p) => p.name === config.deployment.pool)!;
  // In runner mode the GPUs belong to the runner's container: nvidia-smi runs there.
  const inventory = await discoverGpus({ pool, mode: options.inventory ?? "auto", ...(runner && { run: (file, args, timeoutMs) => runner.run(file, args, timeoutMs) }) });
  for (const warning of inventory.warnings) logger.warn({ source: inventory.source }, warning);
  // The scheduler places stages on the devices actually found (the pool's own when simulated).
  const scheduledPool = {
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
  const scheduler = schedulerFromConfig(scheduledConfig);

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
  const storeLocation = parseDatabase(options.database, dataDir);
  if (storeLocation.kind === "sqlite") ensurePrivateStoreFiles(storeLocation.file, logger);
  const store = await openStore(storeLocation, { durability: options.durability ?? "full" });
  logger.info({ store: storeLocation.kind, ...(storeLocation.kind === "postgres" && { schema: storeLocation.schema }) }, storeLocation.kind === "sqlite" ? "store: embedded SQLite in the data directory" : "store: PostgreSQL");
  // Every stage of a run finds the run's inputs, opened from their sealed field, as run-inputs.json.
  const runInputs = new RunInputsSource(security.keyring, async (tenant, runId) => (await store.getRun(tenant, runId))?.inputs);
  let loop: AgentLoop | undefined;
  const metrics = new AgentMetrics({ store, scheduler, devices: inventory.devices, loop: () => loop });
  const sampler = inventory.nvidiaSmi ? new NvidiaSmiVramSampler(inventory.nvidiaSmi) : undefined;
  loop = new AgentLoop({
    store,
    scheduler,
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
    },
    costModel,
    logger,
    maxAttempts: MAX_ATTEMPTS,
    commandDir: options.commandDir ?? process.cwd(),
    observer: metrics,
    onCostModelChange: saveCostModel,
    audit: (event) => void audit.note(event),
    sealOutputs: (run, artifacts) => sealer.sealOutputs(run, artifacts),
    openInputs: async (run, stageId, attempt, inputs) => sealer.openInputs(run, stageId, attempt, inputs, await runInputs.open(run)),
    sealLogs: (run, logs) => sealer.sealLogs(run, logs),
    discardWorkspaces: true,
    modelTags,
    discardRun: (runId) => {
      runInputs.forget(runId);
      return sealer.discardRun(runId);
    },
  });
  const graphOf = async (run: { id: string; tenant: string }): Promise<WorkflowGraph | undefined> => {
    const detail = await store.getRun(run.tenant, run.id);
    if (detail === undefined) return undefined;
    const doc = (await openRunField(security.keyring, run.tenant, run.id, "document", detail.document)) as { workflowRef?: string } | undefined;
    if (doc && typeof doc.workflowRef === "string") return workflows.get(doc.workflowRef);
    try {
      return parseWorkflow(doc);
    } catch {
      return undefined;
    }
  };
  await sealer.clearScratch();
  const recovered = await loop.start(graphOf);
  const rotation = new KeyRotationFollower({
    keyring: security.keyring,
    store,
    tenants: config.tenants,
    artifactsRoot: sealer.artifactsRoot,
    agentFiles: [{ path: join(dataDir, MODEL_TAGS_KEY_FILE), context: MODEL_TAGS_KEY_CONTEXT }],
    logsRoot: sealer.logsRoot,
    audit,
    logger,
    checkEveryMs: (options.keyCheckIntervalS ?? 10) * 1000,
  });
  await rotation.start();
  logger.info({ ...recovered, gpus: inventory.devices.length, source: inventory.source }, "agent state recovered");

  let ready = false;
  const app = await buildHttpApi({
    config,
    store,
    loop,
    scheduler,
    devices: inventory.devices,
    inventorySource: inventory.source,
    submission: { config, workflows, gpus: inventoryFromPools([scheduledPool]), headroomMiB: scheduler.settings.headroomMiB, costModel },
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
  logger.info({ url, dataDir, simulated: inventory.source === "simulated" }, "agent listening");

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    dataDir,
    config,
    inventory,
    loop,
    app,
    close() {
      closing ??= (async () => {
        ready = false;
        stopWatching();
        await app.close();
        await rotation.stop();
        await loop.stop();
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
