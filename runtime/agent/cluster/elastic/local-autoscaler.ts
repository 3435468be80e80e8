/**
 * What drives the local scaler in `gpufabric dev --workers auto`: every `intervalMs` it reads the leader's
 * queue and GPUs through the API (with each tenant's token: a tenant sees only its own runs), turns the
 * stages that wait for a GPU in service (the scheduler's `no-fit` and `gang` reasons) into demand, asks the
 * pure demand function (runtime/scheduler/demand.ts: the one the simulator's elastic pools and the control
 * plane's demand controller run) how many workers the pool needs, and scales the local workers to it.
 *
 * The dev process owns the worker processes (as Kubernetes owns a workload's pods), so it is the one that
 * follows the demand here; the cooldown, min and max are the demand function's.
 */
import type { Logger } from "pino";
import { computeDemand, type DemandResult, type DemandState, type DemandWorker, type PendingStage } from "../../../scheduler/demand.ts";
import type { LocalScaler } from "./local-scaler.ts";

export interface LocalAutoscalerOptions {
  readonly scaler: LocalScaler;
  readonly pool: string;
  readonly gpusPerWorker: number;
  readonly vramMiBPerGpu: number;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly scaleDownCooldownS: number;
  readonly intervalMs?: number;
  /** The leading control plane's URL now (undefined while none leads). */
  readonly leaderUrl: () => Promise<string | undefined>;
  /** A token of each tenant: the queue is read tenant by tenant. */
  readonly tokens: readonly string[];
  /** The node each slot's worker serves. */
  readonly nodeOf: (slot: number) => string;
  readonly logger: Logger;
}

interface QueueBody {
  readonly waiting: ReadonlyArray<{ runId: string; stageId: string; wait: { code: string; needMiB?: number; gpus?: number } }>;
}
interface GpusBody {
  readonly gpus: ReadonlyArray<{ node: string; running: readonly unknown[] }>;
}

export class LocalAutoscaler {
  private timer: NodeJS.Timeout | undefined;
  private state: DemandState | undefined;
  private readonly readySince = new Map<string, number>();
  private readonly idleSince = new Map<string, number>();
  private busyNodes = new Map<string, number>();
  private ticking: Promise<void> | undefined;
  private readonly started = Date.now();
  /** The last decision (for the CLI's output and the tests). */
  last: DemandResult | undefined;

  constructor(private readonly o: LocalAutoscalerOptions) {}

  /** GPUs busy on a node, from the last read of the leader's GPUs (the local scaler's idle preference). */
  busy(node: string): boolean {
    return (this.busyNodes.get(node) ?? 0) > 0;
  }

  start(): void {
    const every = this.o.intervalMs ?? 1000;
    const loop = () => {
      this.ticking = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, "the demand could not be read; trying again"))
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(loop, every);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    if (t) clearTimeout(t);
    await this.ticking;
  }

  /** One round: read, decide, scale. */
  async tick(): Promise<DemandResult | undefined> {
    const url = await this.o.leaderUrl();
    if (url === undefined) return undefined;
    const nowMs = Date.now();
    const nowS = (nowMs - this.started) / 1000;
    const [queues, gpus] = await Promise.all([Promise.all(this.o.tokens.map((t) => get<QueueBody>(url, "/v1/queue", t))), get<GpusBody>(url, "/v1/gpus", this.o.tokens[0]!)]);
    const busy = new Map<string, number>();
    for (const g of gpus.gpus) if (g.running.length > 0) busy.set(g.node, (busy.get(g.node) ?? 0) + 1);
    this.busyNodes = busy;
    const pending: PendingStage[] = [];
    const seen = new Set<string>();
    for (const q of queues) {
      for (const w of q.waiting) {
        // Only a stage waiting for a GPU in service is demand (not one waiting for its inputs or its quota).
        if (w.wait.code !== "no-fit" && w.wait.code !== "gang") continue;
        const id = `${w.runId}/${w.stageId}`;
        seen.add(id);
        if (!this.readySince.has(id)) this.readySince.set(id, nowS);
        pending.push({ id, gpus: w.wait.code === "gang" ? (w.wait.gpus ?? 1) : 1, vramMiB: Math.min(w.wait.needMiB ?? 0, this.o.vramMiBPerGpu), priority: "interactive", readySinceS: this.readySince.get(id)! });
      }
    }
    for (const id of [...this.readySince.keys()]) if (!seen.has(id)) this.readySince.delete(id);
    const workers: DemandWorker[] = [];
    this.o.scaler.states().forEach((state, slot) => {
      if (state === "free") return;
      const node = this.o.nodeOf(slot);
      const gpusBusy = Math.min(busy.get(node) ?? 0, this.o.gpusPerWorker);
      if (gpusBusy > 0 || state !== "up") this.idleSince.delete(node);
      else if (!this.idleSince.has(node)) this.idleSince.set(node, nowS);
      workers.push({
        id: node,
        gpusBusy,
        gpusFree: state === "draining" ? 0 : this.o.gpusPerWorker - gpusBusy,
        draining: state === "draining",
        starting: state === "starting",
        idleSinceS: gpusBusy > 0 || state !== "up" ? null : this.idleSince.get(node)!,
      });
    });
    const result = computeDemand({
      pool: {
        gpusPerWorker: this.o.gpusPerWorker,
        vramMiBPerGpu: this.o.vramMiBPerGpu,
        minWorkers: this.o.minWorkers,
        maxWorkers: this.o.maxWorkers,
        scaleDownCooldownS: this.o.scaleDownCooldownS,
        // Local stages are the examples and tests: batch asks for a worker as soon as interactive does.
        batchScaleUpDelayS: 0,
      },
      workers,
      pending,
      nowS,
      ...(this.state !== undefined && { state: this.state }),
    });
    this.state = result.state;
    this.last = result;
    const current = await this.o.scaler.current(this.o.pool);
    if (result.desired !== current) {
      this.o.logger.info({ desired: result.desired, current, pending: pending.length, reasons: result.reasons }, "scaling the local workers");
      await this.o.scaler.scaleTo(this.o.pool, result.desired);
    }
    return result;
  }
}

async function get<T>(base: string, path: string, token: string): Promise<T> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}`);
  return (await res.json()) as T;
}
