/**
 * A control plane of a cluster: every replica serves the API over the shared PostgreSQL store, and the one
 * holding the `scheduler` lease leads. A tenure, from election to loss:
 *
 *  1. The elector wins the lease with a new epoch; the store fences every scheduling write by it, so a
 *     deposed leader's write is refused inside its own transaction.
 *  2. A fresh scheduler and worker registry are built, the loop recovers from the store (closing the open
 *     attempts of earlier tenures as interrupted) and takes up every active run.
 *  3. Workers register and poll; runs accepted or cancelled by other replicas are taken up from the store
 *     (LISTEN/NOTIFY as a hint, a poll every second as the truth).
 *  4. On loss (renewal refused or overdue, or shutdown) the registry ends what it handed out, the loop
 *     stops without touching the store, and the replica contends again as a follower.
 *
 * Nothing here is consensus of its own: the lease row and its epoch in PostgreSQL decide who leads.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { ValidationError } from "../../config/errors.ts";
import type { PlatformConfig } from "../../config/schema.ts";
import type { Stage, WorkflowGraph } from "../../graph/index.ts";
import type { Scheduler, WaitReason } from "../../scheduler/index.ts";
import { schedulerFromConfig } from "../../scheduler/from-config.ts";
import type { AuditEvent } from "../../security/audit/index.ts";
import type { KeyProvider } from "../../security/crypto/index.ts";
import { StaticTokenVerifier } from "../../security/identity/index.ts";
import { authFailure, type AuthResult } from "../../security/identity/types.ts";
import type { AttemptSpec, Executor, RunningAttempt } from "../executors/types.ts";
import type { GpuDevice } from "../inventory/types.ts";
import { LeaderElector } from "../store/pg/leader-elector.ts";
import type { PgStore } from "../store/pg-store.ts";
import type { RunRecord } from "../store/types.ts";
import type { AgentLoop, RunningStage } from "../service/loop.ts";
import type { RunQueue } from "../service/run-queue.ts";
import { ClusterComfy } from "./comfy-leader.ts";
import type { ClusterHttp } from "./routes.ts";
import { poolDevices, WorkerRegistry } from "./registry.ts";
import { controlPlaneSources, DemandController, type PoolDemandSnapshot } from "./elastic/controller.ts";
import { KubernetesScaler } from "./elastic/kubernetes-scaler.ts";
import type { WorkerScaler } from "./elastic/scaler.ts";

export const SCHEDULER_LEASE = "scheduler";
/** The pseudo-tenant of the workers' token file (`<workerTokens.mountPath>/workers`). */
export const WORKER_TOKEN_FILE = "workers";

export interface ControlPlaneOptions {
  readonly config: PlatformConfig;
  readonly store: PgStore;
  readonly keys: KeyProvider;
  readonly logger: Logger;
  readonly audit: (event: AuditEvent) => void;
  /** Where this replica mounts the shared storage. */
  readonly sharedDir: string;
  /** Builds the loop of a tenure over its scheduler, with executors that hand attempts to the workers. */
  readonly makeLoop: (scheduler: Scheduler, devices: readonly GpuDevice[], executors: { process: Executor; simulated: Executor; comfyui?: Executor }) => AgentLoop;
  readonly graphOf: (run: RunRecord, document?: unknown) => Promise<WorkflowGraph | undefined>;
  /** The array the pool's devices are kept in (the API reads it). */
  readonly devices?: GpuDevice[];
  /** Called when a tenure begins and ends (e.g. to start and stop the key rotation follower). */
  readonly onTenure?: (leading: boolean) => Promise<void> | void;
  /** Sets the number of workers when cluster.elasticity is on (the local scaler of `gpufabric dev`); default: the config's provider. */
  readonly scaler?: WorkerScaler;
}

interface Tenure {
  readonly epoch: number;
  readonly scheduler: Scheduler;
  readonly registry: WorkerRegistry;
  readonly loop: AgentLoop;
  readonly intake: NodeJS.Timeout;
  /** The pool's demand controller (cluster.elasticity on). */
  readonly demand: DemandController | undefined;
}

/** An executor whose attempts run on the worker serving their GPUs' node. */
class RemoteExecutor implements Executor {
  constructor(
    readonly kind: "process" | "simulated" | "comfyui",
    private readonly registry: WorkerRegistry
  ) {}

  start(attempt: AttemptSpec): Promise<RunningAttempt> {
    return this.registry.assign(attempt);
  }
}

export class ControlPlane {
  /** The pool's devices, updated by the workers while this replica leads (the array given as `devices`). */
  readonly devices: GpuDevice[];
  readonly queue: RunQueue;
  readonly http: ClusterHttp;
  /**
   * The workers' ComfyUI servers (config.comfyui set), for the API: their live events while this replica
   * leads, and what they offer (null while it does not lead: /object_info then falls back to the planner's table).
   */
  readonly comfy: ClusterComfy | undefined;
  private elector: LeaderElector | undefined;
  private readonly workerTokens: StaticTokenVerifier;
  private readonly stopWatching: () => void;
  private tenure: Tenure | undefined;
  private starting: Promise<void> | undefined;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  /** Runs named by notifications, waiting for the next intake read. */
  private readonly named = new Set<string>();
  private reading = false;
  private wakeups: { close(): Promise<void> } | undefined;
  private closed = false;
  private holder = "";
  private readonly scaler: WorkerScaler | undefined;

  constructor(private readonly o: ControlPlaneOptions) {
    const cluster = o.config.cluster!;
    this.devices = o.devices ?? [];
    this.devices.splice(0, this.devices.length, ...poolDevices(o.config.pools.find((p) => p.name === o.config.deployment.pool)!));
    try {
      this.workerTokens = StaticTokenVerifier.load(cluster.workerTokens.mountPath, [WORKER_TOKEN_FILE]);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      throw new ValidationError("platform config", [
        { field: "cluster.workerTokens.mountPath", message: `${err.issues.map((i) => i.message).join("; ")} (the workers' token hashes: a file named '${WORKER_TOKEN_FILE}')` },
      ]);
    }
    if (this.workerTokens.size === 0) o.logger.warn({ dir: cluster.workerTokens.mountPath }, "no worker token hashes found: no worker can join until some are mounted");
    this.stopWatching = this.workerTokens.watch((event) => {
      if (!event.ok) o.logger.error({ err: event.error }, "worker token files could not be reloaded; the previous ones stay in force");
    });
    this.queue = this.makeQueue();
    this.scaler = o.scaler ?? scalerOf(o.config);
    this.comfy = o.config.comfyui === null ? undefined : new ClusterComfy(() => this.tenure?.registry, o.logger);
    this.http = {
      ...(this.comfy && { comfy: this.comfy }),
      authenticate: (authorization) => this.authenticateWorker(authorization),
      registry: () => this.tenure?.registry,
      leaderUrl: async () => {
        const state = await this.o.store.leaderLease(SCHEDULER_LEASE).state().catch(() => undefined);
        return state?.live && state.holder !== null ? state.holder.split(" ")[0]! : null;
      },
    };
  }

  get isLeader(): boolean {
    return this.tenure !== undefined;
  }

  get epoch(): number | undefined {
    return this.tenure?.epoch;
  }

  scheduler(): Scheduler | undefined {
    return this.tenure?.scheduler;
  }

  registry(): WorkerRegistry | undefined {
    return this.tenure?.registry;
  }

  /** The pool's demand as last computed while leading with elasticity on; undefined otherwise. */
  demand(): PoolDemandSnapshot | undefined {
    return this.tenure?.demand?.snapshot();
  }

  /** Starts contending for the lease, as `advertiseUrl` (where workers reach this replica). */
  start(advertiseUrl: string): void {
    // The holder names the replica's URL, so followers can send workers to the leader.
    this.holder = `${advertiseUrl} ${randomUUID().slice(0, 8)}`;
    const elector = new LeaderElector(this.o.store.leaderLease(SCHEDULER_LEASE), {
      holder: this.holder,
      ttlMs: this.o.config.cluster!.leaderLeaseMs,
      onError: (err) => this.o.logger.warn({ err: (err as Error).message }, "the leader lease could not be renewed or taken (the database may be unreachable)"),
    });
    this.elector = elector;
    elector.on("became-leader", (epoch) => {
      this.starting = this.lead(epoch).catch((err: unknown) => {
        this.o.logger.error({ err, epoch }, "could not take up the leadership: stepping down");
        void elector.stop({ release: true }).then(() => !this.closed && elector.start());
      });
    });
    elector.on("lost-leadership", (epoch, reason) => {
      void this.stepDown(epoch, reason);
    });
    elector.start();
  }

  /** Stops leading (releasing the lease so another replica takes over at once) and stops contending. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    await this.starting?.catch(() => undefined);
    const epoch = this.tenure?.epoch;
    // The loop stops before the lease goes: no write of this tenure can follow the next one's first.
    if (epoch !== undefined) await this.stepDown(epoch, "stopped");
    await this.elector?.stop({ release: true });
    await this.wakeups?.close();
  }

  private async lead(epoch: number): Promise<void> {
    const { config, store, logger } = this.o;
    store.fenceBy({ lease: SCHEDULER_LEASE, epoch });
    store.retryUnavailable(60_000);
    const pool = config.pools.find((p) => p.name === config.deployment.pool)!;
    const scheduler = schedulerFromConfig(config);
    let loop: AgentLoop | undefined;
    const registry = new WorkerRegistry({
      pool,
      scheduler,
      epoch,
      leaseMs: config.cluster!.workerLeaseMs,
      sharedDir: this.o.sharedDir,
      keys: this.o.keys,
      logger,
      audit: this.o.audit,
      devices: this.devices,
      onChange: () => loop?.wake(),
    });
    loop = this.o.makeLoop(scheduler, this.devices, {
      process: new RemoteExecutor("process", registry),
      simulated: new RemoteExecutor("simulated", registry),
      // ComfyUI stages run on the workers' ComfyUI servers: not labelled simulated.
      ...(this.o.config.comfyui !== null && { comfyui: new RemoteExecutor("comfyui", registry) }),
    });
    const recovered = await loop.start(this.o.graphOf);
    const intake = setInterval(() => this.sync(), 1000);
    intake.unref();
    const elasticity = config.cluster!.elasticity;
    const demand = elasticity.enabled
      ? new DemandController({
          pool,
          elasticity,
          headroomMiB: config.scheduler.headroomMiB,
          sources: controlPlaneSources({ registry, loop, scheduler, tenants: config.tenants.map((t) => t.name) }),
          ...(this.scaler && { scaler: this.scaler }),
          logger,
        })
      : undefined;
    this.tenure = { epoch, scheduler, registry, loop, intake, demand };
    demand?.start();
    // A run accepted by another replica is named in its notification: taken up at once. The poll every
    // second stays the truth (a notification may be lost) and sees cancellations made elsewhere.
    this.wakeups ??= store.listen((what, payload) => {
      if (what === "ready" && payload !== "") this.takeUp(payload);
    });
    await this.o.onTenure?.(true);
    logger.info({ epoch, ...recovered }, "leading: scheduling the cluster's runs");
    this.o.audit({ actor: "gpufabric-agent", action: "cluster.leader.elected", object: `lease/${SCHEDULER_LEASE}`, outcome: "success", data: { epoch, holder: this.holder.split(" ")[0]!, interrupted: recovered.interrupted } });
    this.sync();
  }

  private async stepDown(epoch: number, reason: string): Promise<void> {
    await this.starting?.catch(() => undefined);
    const t = this.tenure;
    if (t === undefined || t.epoch !== epoch) return;
    this.tenure = undefined;
    clearInterval(t.intake);
    // No new demand computation from now on (the next leader computes afresh; the workers stay as they are
    // meanwhile); one in flight, with its scale request, is waited for below, not before the loop stops.
    const demandStopped = t.demand?.stop();
    // Every attempt handed out ends here, unrecorded: the next leader closes them as interrupted.
    t.registry.close();
    await t.loop.stop();
    await demandStopped;
    this.o.store.fenceBy(undefined);
    await this.o.onTenure?.(false);
    this.o.logger.warn({ epoch, reason }, "no longer leading");
    this.o.audit({ actor: "gpufabric-agent", action: "cluster.leader.stepped-down", object: `lease/${SCHEDULER_LEASE}`, outcome: "success", data: { epoch, reason } });
  }

  /**
   * Takes up a run accepted by another replica (`tenant/run id`, from its notification); the runs named
   * while a read is in flight are read together next.
   */
  private takeUp(ref: string): void {
    const t = this.tenure;
    const slash = ref.indexOf("/");
    if (t === undefined || slash < 1) return;
    const id = ref.slice(slash + 1);
    if (t.loop.holds(id)) return;
    this.named.add(id);
    if (this.reading) return;
    this.reading = true;
    void (async () => {
      try {
        while (this.named.size > 0 && this.tenure === t) {
          const ids = [...this.named].slice(0, 500);
          for (const x of ids) this.named.delete(x);
          await this.intake(t, ids);
        }
      } catch (err) {
        this.o.logger.warn({ err: (err as Error).message }, "could not take up runs accepted elsewhere; the next poll will");
      } finally {
        this.named.clear();
        this.reading = false;
      }
    })();
  }

  private async intake(t: Tenure, runIds: readonly string[]): Promise<void> {
    const wanted = runIds.filter((id) => !t.loop.holds(id));
    for (const found of await this.o.store.runsForIntake(wanted)) {
      if (this.tenure !== t || t.loop.holds(found.run.id)) continue;
      if (found.run.status === "queued" || found.run.status === "running") await t.loop.resume(found.run, found.stages, found.document);
    }
  }

  /** Takes up runs accepted by other replicas, and stops those they cancelled. */
  private sync(): void {
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        const t = this.tenure;
        if (t === undefined) return;
        const active = await this.o.store.activeRunIds();
        const ids = new Set(active.map((r) => r.id));
        const missing = active.map((r) => r.id).filter((id) => !t.loop.holds(id));
        for (let i = 0; i < missing.length && this.tenure === t; i += 500) await this.intake(t, missing.slice(i, i + 500));
        // A run held here but not active in the store was closed elsewhere, unless it was accepted after
        // the read above: only a run the store now says has ended is let go.
        const gone = t.loop.heldRunIds().filter((id) => !ids.has(id));
        if (gone.length > 0) {
          const statuses = await this.o.store.runStatuses(gone);
          for (const id of gone) {
            const status = statuses.get(id);
            if (status === "cancelled" || status === "failed" || status === "succeeded") t.loop.closedElsewhere(id);
          }
        }
      } while (this.syncAgain && !this.closed);
    })()
      .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, "could not read the store's active runs; trying again"))
      .finally(() => (this.syncing = undefined));
  }

  private authenticateWorker(authorization: string | undefined): AuthResult {
    const m = /^Bearer ([^\s]+)$/.exec(authorization ?? "");
    if (m === null) return authFailure(authorization === undefined ? "missing" : "malformed", "a worker sends 'Authorization: Bearer <its token>'");
    return this.workerTokens.verify(m[1]!);
  }

  /** The API's view: the loop while leading; the store alone otherwise. */
  private makeQueue(): RunQueue {
    const quiet = new EventEmitter();
    quiet.setMaxListeners(0);
    const loop = () => this.tenure?.loop;
    return {
      get changes() {
        return loop()?.changes ?? quiet;
      },
      get activeRunCount() {
        return loop()?.activeRunCount ?? 0;
      },
      // A follower's accepted run reaches the leader through the store (its NOTIFY, or the next poll).
      accept: (run, stages, graph) => loop()?.accept(run, stages, graph),
      cancel: async (tenant, runId) => {
        const l = loop();
        if (l !== undefined) return l.cancel(tenant, runId);
        return (await this.o.store.cancelRun(tenant, runId))?.run;
      },
      explain: (runId: string, stageId: string): WaitReason | null => loop()?.explain(runId, stageId) ?? null,
      runningStages: (): RunningStage[] => loop()?.runningStages() ?? [],
      activeRunsOf: (tenant: string) => loop()?.activeRunsOf(tenant) ?? [],
      stageSpec: (runId: string, stageId: string): Stage | undefined => loop()?.stageSpec(runId, stageId),
    };
  }
}

/** The scaler cluster.elasticity's provider names (none for `none`, or with elasticity off). */
function scalerOf(config: PlatformConfig): WorkerScaler | undefined {
  const e = config.cluster!.elasticity;
  if (!e.enabled || e.provider.type !== "kubernetes") return undefined;
  const p = e.provider;
  return new KubernetesScaler({ pool: config.deployment.pool, namespace: p.namespace, kind: p.kind, name: p.name, serviceAccountDir: p.serviceAccountDir });
}
