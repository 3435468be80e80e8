/**
 * The demand controller of the leading control plane: every `intervalSeconds` it gathers what the pool's
 * queue needs and what its workers offer, asks the pure demand function (runtime/scheduler/demand.ts, the
 * one the simulator's elastic pools run) how many workers the pool should have, publishes the answer
 * (gpufabric_pool_desired_workers and GET /v1/pools/:pool/demand) and, with a scaler, asks the platform
 * for that many workers when it differs from what the platform runs.
 *
 * Inputs:
 *  - waiting stages: ready stages of the runs the loop holds that the scheduler cannot place now on any
 *    GPU in service (its `no-fit` and `gang` reasons), with their GPUs, VRAM and the run's priority class.
 *    A stage held back by its tenant's quota is not demand: more workers would not let it run.
 *  - workers: those registered (GPUs busy and free, draining or not), plus `starting` ones: replicas the
 *    scaler was asked for that have not registered yet (a pod pending on a node being provisioned).
 *
 * Only the leader runs one (a tenure's), so two replicas never scale against each other.
 */
import type { Logger } from "pino";
import type { ElasticityConfig, PoolConfig, PriorityClass } from "../../../config/schema.ts";
import { computeDemand, type DemandResult, type DemandState, type DemandWorker, type PendingStage } from "../../../scheduler/demand.ts";
import type { WorkerScaler } from "./scaler.ts";

/** A ready stage the scheduler cannot place now. */
export interface WaitingStage {
  readonly runId: string;
  readonly stageId: string;
  readonly tenant: string;
  readonly gpus: number;
  readonly vramMiB: number;
  readonly priority: PriorityClass;
}

/** A registered worker as the controller sees it. */
export interface WorkerView {
  readonly workerId: string;
  readonly gpus: number;
  readonly gpusBusy: number;
  readonly draining: boolean;
}

/** Where the controller reads the pool's state (the registry and the loop in a control plane; fakes in tests). */
export interface DemandSources {
  workers(): readonly WorkerView[];
  waiting(): readonly WaitingStage[];
}

export interface PoolDemandSnapshot {
  readonly pool: string;
  readonly atMs: number;
  readonly desired: number;
  /** Workers up or starting, not draining. */
  readonly current: number;
  /** Workers registered and not draining. */
  readonly ready: number;
  readonly starting: number;
  readonly draining: number;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly provider: "kubernetes" | "local" | "none";
  /** The replicas the scaler says the platform runs or starts (null without a scaler, or when it could not be read). */
  readonly requested: number | null;
  readonly breakdown: DemandResult["breakdown"];
  /** Why, in words; stage ids left out (a tenant's view must not name another tenant's stages). */
  readonly reasons: readonly string[];
  /** The waiting stages the number counts. */
  readonly waiting: ReadonlyArray<WaitingStage & { readonly waitingS: number }>;
  /** Waiting stages no worker of this pool could ever hold, and why. */
  readonly unplaceable: ReadonlyArray<{ readonly runId: string; readonly stageId: string; readonly tenant: string; readonly reason: string }>;
  /** The scaler's last failure, if its last call failed. */
  readonly scalerError: string | null;
}

export interface DemandControllerOptions {
  readonly pool: PoolConfig;
  readonly elasticity: ElasticityConfig;
  /** VRAM the scheduler keeps free on every device: a stage gets at most the rest. */
  readonly headroomMiB: number;
  readonly sources: DemandSources;
  /** What sets the number of workers; none: the number is only published (provider `none`). */
  readonly scaler?: WorkerScaler;
  readonly logger: Logger;
  /** @default Date.now */
  readonly now?: () => number;
}

export class DemandController {
  private state: DemandState | undefined;
  private last: PoolDemandSnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PoolDemandSnapshot> | undefined;
  private stopped = false;
  /** When each waiting stage was first seen waiting, and since when each worker has been idle (ms). */
  private readonly readySince = new Map<string, number>();
  private readonly idleSince = new Map<string, number>();
  private lastError: string | null = null;

  constructor(private readonly o: DemandControllerOptions) {}

  get maxWorkers(): number {
    return this.o.elasticity.maxWorkers ?? this.o.pool.nodes;
  }

  /** The last computation (undefined before the first). */
  snapshot(): PoolDemandSnapshot | undefined {
    return this.last;
  }

  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.o.elasticity.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer and waits for a computation in flight; the platform keeps the workers it has. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One computation (and scale request); a tick still running is joined, not doubled. */
  tick(): Promise<PoolDemandSnapshot> {
    this.running ??= this.compute()
      .catch((err: unknown) => {
        this.o.logger.warn({ err: (err as Error).message }, "the pool's demand could not be computed; trying again");
        throw err;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async compute(): Promise<PoolDemandSnapshot> {
    const { pool, elasticity, scaler, logger } = this.o;
    const nowMs = (this.o.now ?? Date.now)();
    const requested = scaler === undefined ? null : await scaler.current(pool.name).catch((err: unknown) => this.failed("read", err));
    const registered = this.o.sources.workers();
    const waiting = this.o.sources.waiting();
    const workers = this.workersOf(registered, requested, nowMs);
    const pending = this.pendingOf(waiting, nowMs);
    const shape = poolShape(pool, this.o.headroomMiB);
    const result = computeDemand({
      pool: {
        gpusPerWorker: shape.gpusPerWorker,
        vramMiBPerGpu: shape.vramMiBPerGpu,
        minWorkers: elasticity.minWorkers,
        maxWorkers: this.maxWorkers,
        scaleDownCooldownS: elasticity.scaleDownCooldownSeconds,
        batchScaleUpDelayS: elasticity.batchScaleUpDelaySeconds,
      },
      workers,
      pending: pending.map((p) => p.stage),
      nowS: nowMs / 1000,
      ...(this.state && { state: this.state }),
    });
    this.state = result.state;
    const byId = new Map(pending.map((p) => [p.stage.id, p.waiting]));
    const ready = registered.filter((w) => !w.draining).length;
    if (scaler !== undefined && requested !== null && result.desired !== requested && !this.stopped) {
      try {
        await scaler.scaleTo(pool.name, result.desired);
        this.lastError = null;
        logger.info({ pool: pool.name, from: requested, to: result.desired, reasons: result.reasons }, "scaled the pool's workers");
      } catch (err) {
        this.failed("set", err);
      }
    } else if (requested !== null) this.lastError = null;
    this.last = {
      pool: pool.name,
      atMs: nowMs,
      desired: result.desired,
      current: result.current,
      ready,
      starting: workers.filter((w) => w.starting).length,
      draining: registered.length - ready,
      minWorkers: elasticity.minWorkers,
      maxWorkers: this.maxWorkers,
      provider: scaler?.kind ?? "none",
      requested,
      breakdown: result.breakdown,
      // The demand function names stages by the ids given it (indexes here): its per-stage lines stay out.
      reasons: result.reasons.filter((r) => !r.startsWith("stage ")),
      waiting: pending.map((p) => ({ ...p.waiting, waitingS: Math.round((nowMs - p.sinceMs) / 100) / 10 })),
      unplaceable: result.unplaceable.map((u) => {
        const w = byId.get(u.stageId)!;
        return { runId: w.runId, stageId: w.stageId, tenant: w.tenant, reason: u.reason };
      }),
      scalerError: this.lastError,
    };
    return this.last;
  }

  /** Logs a scaler failure once per distinct message (it repeats every interval until fixed); null for the read. */
  private failed(what: "read" | "set", err: unknown): null {
    const message = (err as Error).message;
    if (message !== this.lastError) this.o.logger.error({ pool: this.o.pool.name, err: message }, `could not ${what} the pool's worker count`);
    this.lastError = message;
    return null;
  }

  /** Registered workers with their idle time, and a `starting` worker for each replica asked for and not registered. */
  private workersOf(registered: readonly WorkerView[], requested: number | null, nowMs: number): DemandWorker[] {
    const seen = new Set<string>();
    const out: DemandWorker[] = registered.map((w) => {
      seen.add(w.workerId);
      if (w.gpusBusy > 0) this.idleSince.delete(w.workerId);
      else if (!this.idleSince.has(w.workerId)) this.idleSince.set(w.workerId, nowMs);
      const idle = this.idleSince.get(w.workerId);
      return {
        id: w.workerId,
        gpusBusy: w.gpusBusy,
        gpusFree: Math.max(0, w.gpus - w.gpusBusy),
        draining: w.draining,
        starting: false,
        idleSinceS: idle === undefined ? null : idle / 1000,
      };
    });
    for (const id of [...this.idleSince.keys()]) if (!seen.has(id)) this.idleSince.delete(id);
    // A draining worker is going away: the replicas asked for are made of the others and those still starting.
    const live = registered.filter((w) => !w.draining).length;
    const starting = requested === null ? 0 : Math.max(0, requested - live);
    const gpus = poolShape(this.o.pool, this.o.headroomMiB).gpusPerWorker;
    for (let i = 0; i < starting; i++) out.push({ id: `starting-${i}`, gpusBusy: 0, gpusFree: gpus, draining: false, starting: true, idleSinceS: null });
    return out;
  }

  /** The waiting stages under opaque ids (the demand function's reasons then name no stage), with when each began to wait. */
  private pendingOf(waiting: readonly WaitingStage[], nowMs: number): Array<{ stage: PendingStage; waiting: WaitingStage; sinceMs: number }> {
    const keys = new Set<string>();
    const out = waiting.map((w, i) => {
      const key = `${w.runId}/${w.stageId}`;
      keys.add(key);
      if (!this.readySince.has(key)) this.readySince.set(key, nowMs);
      const sinceMs = this.readySince.get(key)!;
      return { stage: { id: String(i), gpus: w.gpus, vramMiB: w.vramMiB, priority: w.priority, readySinceS: sinceMs / 1000 }, waiting: w, sinceMs };
    });
    for (const key of [...this.readySince.keys()]) if (!keys.has(key)) this.readySince.delete(key);
    return out;
  }
}

/**
 * One worker's GPUs and the VRAM a stage may use on each: a worker serves one node of the pool, so its
 * devices (MIG instances under MIG) and their memory less the scheduler's headroom.
 */
export function poolShape(pool: PoolConfig, headroomMiB: number): { gpusPerWorker: number; vramMiBPerGpu: number } {
  const perNode = new Map<string, number>();
  for (const d of pool.devices) perNode.set(d.node, (perNode.get(d.node) ?? 0) + 1);
  const gpusPerWorker = Math.max(1, ...perNode.values());
  const largest = Math.max(...pool.devices.map((d) => d.memoryMiB));
  return { gpusPerWorker, vramMiBPerGpu: Math.max(1, largest - headroomMiB) };
}

/** What the control plane's sources read: its tenure's registry, loop and scheduler. */
export interface ControlPlaneParts {
  readonly registry: {
    workers(): ReadonlyArray<{ workerId: string; node: string; gpus: number }>;
    nodeOf(deviceId: string): string | undefined;
  };
  readonly loop: {
    activeRunsOf(tenant: string): ReadonlyArray<{ id: string; tenant: string; priority?: PriorityClass; stages: ReadonlyMap<string, { id: string; resources: { gpus: number; vramMiB: number }; priority?: PriorityClass }> }>;
    runningStages(): ReadonlyArray<{ gpus: readonly string[] }>;
  };
  readonly scheduler: { explain(runId: string, stageId: string): { code: string } | null };
  readonly tenants: readonly string[];
}

/** The demand controller's inputs in a control plane. */
export function controlPlaneSources(p: ControlPlaneParts): DemandSources {
  return {
    workers() {
      const busyByNode = new Map<string, number>();
      for (const s of p.loop.runningStages()) {
        for (const gpu of s.gpus) {
          const node = p.registry.nodeOf(gpu);
          if (node !== undefined) busyByNode.set(node, (busyByNode.get(node) ?? 0) + 1);
        }
      }
      // `draining` is the registry's once workers drain (a worker told to go finishes its stages first).
      return p.registry.workers().map((w) => ({
        workerId: w.workerId,
        gpus: w.gpus,
        gpusBusy: Math.min(w.gpus, busyByNode.get(w.node) ?? 0),
        draining: (w as { draining?: boolean }).draining === true,
      }));
    },
    waiting() {
      const out: WaitingStage[] = [];
      for (const tenant of p.tenants) {
        for (const run of p.loop.activeRunsOf(tenant)) {
          for (const stage of run.stages.values()) {
            if (stage.resources.gpus === 0) continue;
            // The scheduler's own word: null while the stage runs or is done; no-fit and gang when no GPU
            // in service can take it now. Quota, dependencies, backoff and priority are not for more workers.
            const code = p.scheduler.explain(run.id, stage.id)?.code;
            if (code !== "no-fit" && code !== "gang") continue;
            out.push({ runId: run.id, stageId: stage.id, tenant: run.tenant, gpus: stage.resources.gpus, vramMiB: stage.resources.vramMiB, priority: run.priority ?? stage.priority ?? "batch" });
          }
        }
      }
      return out;
    },
  };
}
