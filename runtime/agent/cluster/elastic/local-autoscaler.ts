/**
 * What drives the local scaler in `gpufabric dev --workers auto`. The leading control plane's demand
 * controller decides (cluster.elasticity with provider `none`: runtime/scheduler/demand.ts over the
 * scheduler's waiting stages and the registry's workers, the computation the simulator's elastic pools
 * run) and publishes the count at GET /v1/pools/:pool/demand; every `intervalMs` this follower reads it and
 * scales the local worker processes to it, as KEDA follows the same number on Kubernetes.
 *
 * The dev process owns the worker processes (as Kubernetes owns a workload's pods), which is why the
 * follower runs here rather than in the control plane. It also reads which nodes run a stage
 * (GET /v1/gpus), so that a scale-down stops idle workers before busy ones.
 */
import type { Logger } from "pino";
import type { LocalScaler } from "./local-scaler.ts";

export interface LocalAutoscalerOptions {
  readonly scaler: LocalScaler;
  readonly pool: string;
  readonly intervalMs?: number;
  /** The leading control plane's URL now (undefined while none leads). */
  readonly leaderUrl: () => Promise<string | undefined>;
  /** A token allowed gpus:read (any tenant's: the count and the GPUs' use are not a tenant's secret). */
  readonly token: string;
  readonly logger: Logger;
}

/** What the follower uses of GET /v1/pools/:pool/demand. */
export interface DemandAnswer {
  readonly desiredWorkers: number;
  readonly currentWorkers: number;
  readonly readyWorkers: number;
  readonly drainingWorkers: number;
  readonly maxWorkers: number;
  readonly reasons: readonly string[];
}

interface GpusBody {
  readonly gpus: ReadonlyArray<{ node: string; running: readonly unknown[] }>;
}

export class LocalAutoscaler {
  private timer: NodeJS.Timeout | undefined;
  private busyNodes = new Map<string, number>();
  private ticking: Promise<void> | undefined;
  /** The leader's last answer (for the CLI's output and the tests). */
  last: DemandAnswer | undefined;

  constructor(private readonly o: LocalAutoscalerOptions) {}

  /** Whether a node's GPUs ran a stage at the last read (the local scaler's idle preference). */
  busy(node: string): boolean {
    return (this.busyNodes.get(node) ?? 0) > 0;
  }

  start(): void {
    const every = this.o.intervalMs ?? 1000;
    const loop = () => {
      this.ticking = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, "the leader's demand could not be read; trying again"))
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

  /** One round: read the leader's count and the GPUs' use, scale to the count. */
  async tick(): Promise<DemandAnswer | undefined> {
    const url = await this.o.leaderUrl();
    if (url === undefined) return undefined;
    const [demand, gpus] = await Promise.all([
      get<DemandAnswer>(url, `/v1/pools/${encodeURIComponent(this.o.pool)}/demand`, this.o.token),
      get<GpusBody>(url, "/v1/gpus", this.o.token),
    ]);
    // 503: the leader has not computed yet (it just took the lead): the next round reads it.
    if (demand === undefined || gpus === undefined) return undefined;
    const busy = new Map<string, number>();
    for (const g of gpus.gpus) if (g.running.length > 0) busy.set(g.node, (busy.get(g.node) ?? 0) + 1);
    this.busyNodes = busy;
    this.last = demand;
    const current = await this.o.scaler.current(this.o.pool);
    if (demand.desiredWorkers !== current) {
      this.o.logger.info({ desired: demand.desiredWorkers, current, reasons: demand.reasons }, "scaling the local workers to the leader's demand");
      await this.o.scaler.scaleTo(this.o.pool, demand.desiredWorkers);
    }
    return demand;
  }
}

async function get<T>(base: string, path: string, token: string): Promise<T | undefined> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  if (res.status === 503) return undefined;
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return (await res.json()) as T;
}
