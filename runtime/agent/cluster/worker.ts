/**
 * A worker (`gpufabric worker`): one per GPU node of a cluster. It owns the node's GPUs (nvidia-smi, or
 * simulated devices that say so), runs the attempts the leader hands it with the executors and sandbox of a
 * single agent, and reports what happened. It talks only to the control plane, with its own token; it holds
 * no database credential and no keyring: the data keys of the files its attempts read and write are
 * wrapped and unwrapped by the leader, one object at a time (AttemptKeys).
 *
 * Its loop: register, then poll (a heartbeat that doubles as a long poll for work) for as long as it runs.
 * A leader it cannot reach, or one that no longer knows it, makes it register again, with whichever
 * control plane leads then; attempts of an earlier tenure are stopped when the new leader does not know them.
 *
 * Draining (SIGTERM: a scale-down, a node going away): the worker tells the leader, which places nothing more
 * on its GPUs; the attempts it holds run to their end and are reported; then it tells the leader it leaves
 * and exits. A stage is never cut short by a drain: the end of a stage is the only place a worker goes away.
 * A draining worker that loses its registration (the leader changed or lost it) does not register again:
 * that leader already counts its attempts interrupted and runs them elsewhere, so it stops them and exits.
 */
import { readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { hostname } from "node:os";
import { isAbsolute, join, relative, sep } from "node:path";
import type { Logger } from "pino";
import { ValidationError } from "../../config/errors.ts";
import type { PlatformConfig } from "../../config/schema.ts";
import type { ComfyNode, Stage } from "../../graph/model.ts";
import type { KeyProvider } from "../../security/crypto/index.ts";
import { executorFor, ProcessExecutor, SimulatedExecutor } from "../executors/index.ts";
import type { AttemptInput, AttemptOutcome, Executor, RunningAttempt } from "../executors/types.ts";
import { discoverGpus, NvidiaSmiVramSampler } from "../inventory/index.ts";
import { ComfyRelay, ComfyServerPool, ComfyUiExecutor, comfyUiForInventory, type ComfyIntrospection } from "../executors/comfyui/index.ts";
import { isolateStages } from "../service/isolation.ts";
import { ArtifactSealer, chooseScratch } from "../service/sealing.ts";
import { resolveStageCommand } from "../service/stage-command.ts";
import { CLUSTER_PREFIX, WORKER_PROTOCOL, type Assignment, type DeviceReport, type DrainResponse, type PollResponse, type RegisterResponse } from "./protocol.ts";
import { ControlPlaneClient, ControlPlaneUnreachableError } from "./worker-client.ts";
import { ComfyForwarder } from "./comfy-forward.ts";

export interface WorkerOptions {
  readonly config: PlatformConfig;
  /** Control-plane URLs (a Service, or each replica); the worker finds the leader among them. */
  readonly controlPlanes: readonly string[];
  readonly token: string;
  /** The cluster's CA, to check the control plane's certificate (https URLs). */
  readonly ca?: Buffer;
  /** The node's name (its Kubernetes node): the leader binds the worker to the pool node of that name, or to a free one. */
  readonly node?: string;
  /** Local state and scratch (workspaces, plaintext while a stage runs). */
  readonly dataDir: string;
  readonly scratchDir?: string;
  /** Where this worker mounts the shared storage (default: the config's cluster.sharedDir). */
  readonly sharedDir?: string;
  readonly inventory?: "auto" | "nvidia-smi" | "simulated";
  /** Simulated GPUs on this node (default: the pool's GPUs per node). */
  readonly simulatedGpus?: number;
  readonly simulatedTimeScale?: number;
  readonly commandDir?: string;
  readonly killGraceS?: number;
  readonly unsafeSharedIdentity?: boolean;
  readonly configFile?: string;
  readonly logger: Logger;
}

interface Held {
  readonly assignment: Assignment;
  handle: RunningAttempt | null;
  cancelled: boolean;
  /** Stopped because the worker stops (not at the leader's word): reported interrupted, as a lost node's are. */
  byStop?: boolean;
}

/** A KeyProvider that asks the leader to wrap and unwrap, for one attempt's objects only. */
export class AttemptKeys implements KeyProvider {
  constructor(
    private readonly client: ControlPlaneClient,
    private readonly workerId: string,
    private readonly assignment: Assignment
  ) {}

  async currentVersion(): Promise<number> {
    return this.assignment.keyVersion;
  }

  async versions(): Promise<readonly number[]> {
    return [this.assignment.keyVersion];
  }

  wrap(dataKey: Uint8Array, version: number, aad: Uint8Array): Promise<Uint8Array> {
    return this.call("wrap", dataKey, version, aad);
  }

  unwrap(wrapped: Uint8Array, version: number, aad: Uint8Array): Promise<Uint8Array> {
    return this.call("unwrap", wrapped, version, aad);
  }

  private async call(op: "wrap" | "unwrap", key: Uint8Array, version: number, aad: Uint8Array): Promise<Uint8Array> {
    const res = await this.client.post<{ key?: string; message?: string }>(
      `${CLUSTER_PREFIX}/keys`,
      { workerId: this.workerId, token: this.assignment.token, op, version, aad: Buffer.from(aad).toString("base64"), key: Buffer.from(key).toString("base64") },
      30_000
    );
    if (res.status !== 200 || typeof res.body.key !== "string") throw new Error(`the control plane refused to ${op} a data key (${res.status}): ${res.body.message ?? ""}`);
    return Buffer.from(res.body.key, "base64");
  }
}

export class WorkerNode {
  readonly node: string;
  private readonly client: ControlPlaneClient;
  private readonly held = new Map<string, Held>();
  private readonly tasks = new Set<Promise<void>>();
  private workerId: string | undefined;
  private registration: RegisterResponse | undefined;
  private epoch = 0;
  private stopped = false;
  private polling: Promise<void> | undefined;
  /** Set by drain(): resolves once the worker left the leader and stopped. */
  private draining: Promise<void> | undefined;
  /** The registration the leader heard "draining" from (a new registration tells it again). */
  private drainTold: string | undefined;
  private vramAt = 0;
  /** This node's ComfyUI servers (config.comfyui set): their live events and what they offer. */
  comfy: { readonly relay: ComfyRelay; readonly introspection: ComfyIntrospection } | undefined;
  private comfyPool: ComfyServerPool | undefined;
  /** Forwards the relay's live events and the servers' introspection to the leader. */
  comfyForwarder: ComfyForwarder | undefined;

  private constructor(
    private readonly o: WorkerOptions,
    private readonly devices: DeviceReport[],
    private readonly executors: { process: Executor; simulated: Executor; comfyui?: Executor },
    private readonly sharedDir: string,
    private readonly scratch: string,
    private readonly isolation: { sandbox: "per-tenant" | "shared-uid" | "none"; unsafe: boolean }
  ) {
    this.node = o.node ?? hostname();
    this.client = new ControlPlaneClient(o.controlPlanes, o.token, o.ca ? { ca: o.ca } : {});
  }

  static async start(o: WorkerOptions): Promise<WorkerNode> {
    const cluster = o.config.cluster;
    if (cluster === null) throw new Error("the platform config has no cluster section: a worker serves a cluster's control planes");
    const pool = o.config.pools.find((p) => p.name === o.config.deployment.pool)!;
    const sharedDir = o.sharedDir ?? cluster.sharedDir;
    if (!isAbsolute(sharedDir)) throw new Error("sharedDir must be an absolute path");
    const scratch = chooseScratch(o.dataDir, o.scratchDir);
    const inventory = await discoverGpus({ pool, mode: o.inventory ?? "auto", comfyui: o.config.comfyui, ...(o.node !== undefined && { node: o.node }) });
    let devices: DeviceReport[];
    if (inventory.source === "simulated") {
      const count = o.simulatedGpus ?? pool.gpusPerNode;
      devices = Array.from({ length: count }, (_, index) => ({ index, uuid: null, name: `${pool.gpu.model}`, memoryMiB: pool.gpu.memoryMiB, memoryUsedMiB: 0, simulated: true }));
    } else {
      // MIG instances share their GPU's index: the node's whole GPUs are what the pool declares.
      devices = inventory.devices
        .filter((d) => d.migProfile === undefined)
        .map((d) => ({ index: d.index, uuid: d.uuid, name: d.name, memoryMiB: d.memoryMiB, memoryUsedMiB: d.memoryUsedMiB, simulated: d.simulated }));
    }
    const isolation = await isolateStages(
      o.config,
      { unsafeSharedIdentity: o.unsafeSharedIdentity, configFile: o.configFile },
      { dataDir: o.dataDir, scratchDir: scratch.dir },
      // A worker keeps no audit log: the leader records how it isolates stages when it joins.
      { record: async () => undefined },
      o.logger
    );
    const sampler = inventory.nvidiaSmi ? new NvidiaSmiVramSampler(inventory.nvidiaSmi) : undefined;
    const executors = {
      process: new ProcessExecutor({
        dataDir: scratch.dir,
        ...(isolation.sandbox && { sandbox: isolation.sandbox }),
        ...(sampler && { vramSampler: sampler }),
        ...(o.killGraceS && { killGraceMs: o.killGraceS * 1000 }),
      }),
      simulated: new SimulatedExecutor({ timeScale: o.simulatedTimeScale ?? 1 }),
    };
    // One ComfyUI server per GPU of this node; the leader names the GPUs only at registration, so a
    // server is found by its GPU's index (or, attached by URL, by the pool's id of a device of this node,
    // by `<node>-g<index>` as this worker names it, or by CUDA index: ComfyUiServerSchema).
    const node = o.node ?? hostname();
    const comfyGpus = devices.map((d) => ({
      id: pool.devices.find((x) => x.node === node && x.index === d.index)?.id ?? `${node}-g${d.index}`,
      index: d.index,
      memoryMiB: d.memoryMiB,
      aliases: [`${node}-g${d.index}`],
    }));
    const comfyConfig = comfyUiForInventory(o.config.comfyui, inventory.source);
    const comfyPool = comfyConfig === null ? undefined : new ComfyServerPool({ config: comfyConfig, gpus: comfyGpus, logger: o.logger });
    const attached = o.config.comfyui?.servers;
    if (comfyPool !== undefined && attached !== undefined && attached.length > 0 && comfyPool.servers.size === 0) {
      throw new ValidationError("platform config", [
        {
          field: "comfyui.servers",
          message: `no entry names a GPU of this worker (node '${node}', GPUs ${comfyGpus.map((g) => `'${g.id}'`).join(", ")}): name each by the pool's device id, by '${node}-g<index>', or by its CUDA index alone ('0')`,
        },
      ]);
    }
    comfyPool?.start();
    const relay = new ComfyRelay();
    const comfyExecutor = comfyPool && new ComfyUiExecutor({ dataDir: scratch.dir, pool: comfyPool, relay, logger: o.logger });
    const sandbox = isolation.sandbox === undefined ? "none" : isolation.sandbox.options.identity.mode === "per-tenant" ? "per-tenant" : "shared-uid";
    const worker = new WorkerNode(o, devices, { ...executors, ...(comfyExecutor && { comfyui: comfyExecutor }) }, sharedDir, scratch.dir, { sandbox, unsafe: o.unsafeSharedIdentity === true });
    if (comfyPool !== undefined) {
      worker.comfy = { relay, introspection: comfyPool.introspection };
      worker.comfyPool = comfyPool;
      worker.comfyForwarder = new ComfyForwarder({
        client: worker.client,
        relay,
        introspection: comfyPool.introspection,
        workerId: () => worker.workerId,
        attemptOf: (ref) => worker.heldAttempt(ref),
        serversState: () => [...comfyPool.servers.values()].map((s) => `${s.gpu.id}:${s.ready ? s.generation : "down"}`).join(","),
        logger: o.logger,
      });
    }
    worker.polling = worker.run();
    return worker;
  }

  /** The pool node the leader bound this worker to (once registered). */
  get boundNode(): string | undefined {
    return this.registration?.node;
  }

  get attemptsHeld(): number {
    return this.held.size;
  }

  get isDraining(): boolean {
    return this.draining !== undefined;
  }

  /**
   * Drains: tells the leader (nothing more is placed on this node's GPUs), keeps polling while the attempts
   * it holds run to their end and are reported (an assignment placed just before the leader heard of the
   * drain is still taken and run), then tells the leader it leaves and stops. Resolves once it stopped.
   */
  drain(): Promise<void> {
    this.draining ??= this.drainLoop();
    return this.draining;
  }

  private async drainLoop(): Promise<void> {
    this.o.logger.info({ attempts: this.held.size }, "draining: no new stages; the running ones finish, then the worker exits");
    let pause = 100;
    while (!this.stopped) {
      const workerId = this.workerId;
      // Never registered, or the registration is gone (the loop does not register a draining worker again).
      if (workerId === undefined) break;
      try {
        if (this.drainTold !== workerId) {
          const res = await this.client.post<DrainResponse & { message?: string }>(`${CLUSTER_PREFIX}/drain`, { workerId, phase: "draining" }, 10_000);
          if (res.status === 200) this.drainTold = workerId;
          else if (res.status === 410) this.workerId = undefined;
          else if (res.status !== 421) throw new Error(`drain refused (${res.status}): ${res.body?.message ?? ""}`);
        } else if (this.held.size === 0) {
          const res = await this.client.post<DrainResponse & { message?: string }>(`${CLUSTER_PREFIX}/drain`, { workerId, phase: "left" }, 10_000);
          // 409: the leader still counts an attempt as this worker's (one on its way in a poll): go on polling.
          if (res.status === 200 || res.status === 410) {
            this.workerId = undefined;
            this.o.logger.info({ node: this.registration?.node }, "drained: left the cluster");
            break;
          }
          if (res.status !== 409 && res.status !== 421) throw new Error(`leave refused (${res.status}): ${res.body?.message ?? ""}`);
        }
        pause = 100;
      } catch (err) {
        this.o.logger.warn({ err: (err as Error).message }, "the drain could not be reported; trying again");
        pause = Math.min(pause * 2, 2000);
      }
      await sleep(pause);
    }
    await this.stop();
  }

  /** The attempt held for a ComfyUI live event: by its id, or (a preview) by its run and stage. */
  private heldAttempt(ref: { attemptId?: string; runId: string; stageId: string }): { workerId: string; attemptId: string; token: string } | undefined {
    const workerId = this.workerId;
    if (workerId === undefined) return undefined;
    const h = ref.attemptId !== undefined ? this.held.get(ref.attemptId) : [...this.held.values()].find((x) => x.assignment.runId === ref.runId && x.assignment.stageId === ref.stageId);
    return h === undefined || h.assignment.epoch < this.epoch ? undefined : { workerId, attemptId: h.assignment.attemptId, token: h.assignment.token };
  }

  /** Stops polling and every attempt it holds (their attempts end interrupted at the leader). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const h of this.held.values()) {
      h.cancelled = true;
      h.byStop = true;
      h.handle?.cancel();
    }
    await this.polling?.catch(() => undefined);
    await Promise.allSettled([...this.tasks]);
    this.comfyForwarder?.stop();
    await this.comfyPool?.stop();
    this.client.close();
  }

  private async run(): Promise<void> {
    let pause = 100;
    while (!this.stopped) {
      try {
        if (this.workerId === undefined && this.draining !== undefined) {
          // Lost while draining: its attempts run elsewhere already. Stop them; drainLoop ends the worker.
          for (const h of this.held.values()) {
            h.cancelled = true;
            h.handle?.cancel();
          }
          return;
        }
        if (this.workerId === undefined) await this.register();
        else await this.poll();
        pause = 100;
      } catch (err) {
        if (this.stopped) return;
        const unreachable = err instanceof ControlPlaneUnreachableError;
        this.o.logger[unreachable ? "warn" : "error"]({ err: (err as Error).message, target: this.client.target }, unreachable ? "control plane unreachable; trying again" : "worker call failed; trying again");
        await sleep(pause);
        pause = Math.min(pause * 2, 2000);
      }
    }
  }

  private async register(): Promise<void> {
    const res = await this.client.post<RegisterResponse & { message?: string }>(
      `${CLUSTER_PREFIX}/workers`,
      { protocol: WORKER_PROTOCOL, node: this.node, devices: this.devices, residentModels: this.residentModels(), isolation: this.isolation },
      10_000
    );
    if (res.status === 421) {
      await sleep(200);
      return;
    }
    if (res.status !== 200) throw new Error(`registration refused (${res.status}): ${res.body?.message ?? ""}`);
    this.registration = res.body;
    this.workerId = res.body.workerId;
    this.newEpoch(res.body.epoch);
    this.o.logger.info({ node: res.body.node, gpus: res.body.devices.length, epoch: res.body.epoch, leader: this.client.target }, "worker registered");
    // A new registration (a new leader, perhaps): it hears what the servers offer at once.
    void this.comfyForwarder?.introspect();
  }

  private async poll(): Promise<void> {
    const leaseMs = this.registration?.leaseMs ?? 10_000;
    const waitMs = Math.max(100, Math.floor(leaseMs / 3));
    const res = await this.client.post<PollResponse & { message?: string }>(
      `${CLUSTER_PREFIX}/poll`,
      { workerId: this.workerId, running: [...this.held.keys()], waitMs, ...(await this.vramReport()) },
      waitMs + 10_000
    );
    if (res.status === 410 || res.status === 421) {
      // Lost by this leader, or the leader changed: register again where the lead is now.
      this.workerId = undefined;
      return;
    }
    if (res.status !== 200) throw new Error(`poll refused (${res.status}): ${res.body?.message ?? ""}`);
    const body = res.body;
    if (body.epoch > this.epoch) this.newEpoch(body.epoch);
    for (const id of body.cancel) {
      const h = this.held.get(id);
      if (h === undefined) continue;
      h.cancelled = true;
      h.handle?.cancel();
    }
    for (const a of body.assignments) {
      // An assignment of an earlier tenure is refused: that leader no longer decides.
      if (a.epoch < this.epoch || this.held.has(a.attemptId)) continue;
      const held: Held = { assignment: a, handle: null, cancelled: false };
      this.held.set(a.attemptId, held);
      const task = this.runAttempt(held)
        .catch((err: unknown) => this.o.logger.error({ err, attemptId: a.attemptId }, "an attempt could not be carried out"))
        .finally(() => {
          this.held.delete(a.attemptId);
          this.tasks.delete(task);
        });
      this.tasks.add(task);
    }
  }

  /** A new tenure: attempts handed out by an earlier leader are stopped (the new one reruns their stages). */
  private newEpoch(epoch: number): void {
    if (epoch <= this.epoch) return;
    this.epoch = epoch;
    for (const h of this.held.values()) {
      if (h.assignment.epoch < epoch) {
        h.cancelled = true;
        h.handle?.cancel();
      }
    }
  }

  private async runAttempt(held: Held): Promise<void> {
    const a = held.assignment;
    const workerId = this.workerId!;
    const sealer = new ArtifactSealer(new AttemptKeys(this.client, workerId, a), this.sharedDir, this.scratch);
    const run = { id: a.runId, tenant: a.tenant };
    const stage = resolveStageCommand(a.stage as Stage, this.o.commandDir ?? process.cwd());
    let outcome: AttemptOutcome;
    let artifacts: Array<{ name: string; bytes: number; sha256: string; path: string }> = [];
    let handle: RunningAttempt | null = null;
    try {
      const inputs = a.inputs.map((i) => ({ stageId: i.stageId, name: i.name, path: join(this.sharedDir, ...i.path.split("/")) }));
      const opened = await sealer.openInputs(run, a.stageId, a.number, inputs, a.runInputs ?? undefined);
      const byStage = new Map<string, Array<{ name: string; path: string }>>();
      for (const x of opened.inputs) byStage.set(x.stageId, [...(byStage.get(x.stageId) ?? []), { name: x.name, path: x.path }]);
      const attemptInputs: AttemptInput[] = [...[...byStage].map(([stageId, list]) => ({ stageId, artifacts: list })), ...(opened.runInputs !== undefined ? [{ runInputs: opened.runInputs }] : [])];
      handle = await executorFor(stage, this.executors)
        .start({
          attemptId: a.attemptId,
          runId: a.runId,
          tenant: a.tenant,
          stageId: a.stageId,
          number: a.number,
          stage,
          gpus: a.gpus.map((g) => ({ id: g.id, uuid: g.uuid, simulated: g.simulated, index: g.index })),
          inputs: attemptInputs,
          ...(a.comfy !== undefined && { comfy: { nodes: a.comfy.nodes as ComfyNode[] } }),
          ...(a.trace !== undefined && { trace: a.trace }),
        })
        .finally(() => opened.release());
      held.handle = handle;
      if (held.cancelled || this.stopped) handle.cancel();
      const started = await this.report(a, "started", { pid: handle.pid, workspace: handle.workspace });
      if (!started) handle.cancel();
      outcome = await handle.done;
      if (outcome.logs) await sealer.sealLogs(run, outcome.logs).catch((err: unknown) => this.o.logger.warn({ err, attemptId: a.attemptId }, "the attempt's logs could not be sealed"));
      if (outcome.reason === "completed" && !held.cancelled) {
        try {
          const sealed = await sealer.sealOutputs(run, await handle.commitOutputs());
          artifacts = sealed.map((x) => ({ name: x.name, bytes: x.bytes, sha256: x.sha256, path: relative(this.sharedDir, x.path).split(sep).join("/") }));
        } catch (err) {
          outcome = { ...outcome, reason: "setup-failed", message: `outputs could not be committed: ${(err as Error).message}` };
        }
      }
    } catch (err) {
      outcome = { exitCode: null, signal: null, reason: "setup-failed", message: `the worker could not run the attempt: ${(err as Error).message}`, simulated: a.gpus.every((g) => g.simulated) };
    }
    const o = outcome;
    // The attempt's live events reach the leader before its end does (its clients see them in order).
    await this.comfyForwarder?.flush().catch(() => undefined);
    await this.report(a, "finished", {
      outcome: {
        exitCode: o.exitCode,
        signal: o.signal,
        // Stopped by the worker's own stop: interrupted (run again elsewhere, no failure counted); at the leader's word: cancelled.
        reason: held.byStop === true && (o.reason === "interrupted" || o.reason === "cancelled") ? "interrupted" : o.reason === "interrupted" ? "cancelled" : o.reason,
        message: o.message.slice(0, 4000),
        ...(o.peakVramMiB !== undefined && { peakVramMiB: o.peakVramMiB }),
        simulated: o.simulated,
        ...(o.residentModels !== undefined && { residentModels: o.residentModels.slice(0, 1000) }),
      },
      artifacts,
    });
    if (handle?.workspace) await rm(handle.workspace, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Reports to the leader, trying again while it cannot be reached; false when the leader refused it as stale. */
  private async report(a: Assignment, what: "started" | "finished", body: Record<string, unknown>): Promise<boolean> {
    // A stopping worker still tries to report an end, a few times: the leader learns it sooner than by the lease.
    for (let pause = 100, tries = 0; !this.stopped || (what === "finished" && tries < 5); pause = Math.min(pause * 2, 2000), tries++) {
      if (a.epoch < this.epoch) return false;
      try {
        const res = await this.client.post<{ message?: string }>(`${CLUSTER_PREFIX}/attempts/${encodeURIComponent(a.attemptId)}/${what}`, { workerId: this.workerId ?? "", token: a.token, ...body }, 30_000);
        if (res.status === 200) return true;
        if (res.status === 409 || res.status === 410) {
          this.o.logger.info({ attemptId: a.attemptId, what }, "the leader no longer knows the attempt: its result is dropped");
          return false;
        }
        if (res.status !== 421) throw new Error(`${what} report refused (${res.status}): ${res.body?.message ?? ""}`);
      } catch (err) {
        if (!(err instanceof ControlPlaneUnreachableError)) throw err;
        if (this.stopped) return false;
      }
      await sleep(pause);
    }
    return false;
  }

  /** Real GPUs' memory in use, read with nvidia-smi at most every VRAM_REPORT_MS, for the leader's view. */
  private async vramReport(): Promise<{ devices?: Array<{ index: number; memoryUsedMiB: number }> }> {
    if (this.devices.every((d) => d.simulated) || Date.now() - this.vramAt < VRAM_REPORT_MS) return {};
    this.vramAt = Date.now();
    try {
      const pool = this.o.config.pools.find((p) => p.name === this.o.config.deployment.pool)!;
      const now = await discoverGpus({ pool, mode: "nvidia-smi", comfyui: this.o.config.comfyui, ...(this.o.node !== undefined && { node: this.o.node }), timeoutMs: 5000 });
      return { devices: now.devices.filter((d) => d.migProfile === undefined).map((d) => ({ index: d.index, memoryUsedMiB: d.memoryUsedMiB })) };
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, "nvidia-smi could not be read for the VRAM report");
      return {};
    }
  }

  private residentModels(): string[] {
    const dir = this.o.config.isolation.modelCacheDir;
    if (dir === null) return [];
    try {
      return readdirSync(dir).slice(0, 1000);
    } catch {
      return [];
    }
  }
}

const VRAM_REPORT_MS = 5000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
