/**
 * Prometheus metrics (prom-client, a registry of the agent's own): `gpufabric_*` names with their
 * units, labelled by tenant where they concern one. Gauges are read from the store and the loop at
 * scrape time, so they never drift from the truth.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Scheduler } from "../../scheduler/index.ts";
import type { GpuDevice } from "../inventory/types.ts";
import type { Store } from "../store/types.ts";
import type { PoolDemandSnapshot } from "../cluster/elastic/controller.ts";
import type { MeasuredUse } from "./gpu-history.ts";
import type { AttemptUsage, LoopObserver } from "./loop-types.ts";
import type { RunQueue } from "./run-queue.ts";

const MIB = 1024 * 1024;
const QUEUE_STATES = ["waiting", "ready", "placed", "running", "sealing"] as const;
/** The label of workflows submitted inline (not declared in the platform config). */
export const INLINE_WORKFLOW = "(inline)";
/** dcgm-exporter's labels, so its dashboards and alerts work on the agent's series unchanged. */
const DCGM_LABELS = ["gpu", "UUID", "device", "modelName", "Hostname"] as const;
type DcgmLabel = (typeof DCGM_LABELS)[number];

export class AgentMetrics implements LoopObserver {
  readonly registry = new Registry();
  private readonly submitted: Counter<"tenant">;
  private readonly refused: Counter<"tenant" | "reason">;
  private readonly runsFinished: Counter<"tenant" | "status">;
  private readonly stageSeconds: Histogram<"tenant" | "outcome" | "simulated">;
  private readonly dispatchSeconds: Histogram<"tenant">;
  private readonly gpuSeconds: Counter<"tenant" | "workflow">;
  private readonly vramGiBSeconds: Counter<"tenant" | "workflow">;
  private readonly declaredWorkflows: ReadonlySet<string>;

  constructor(parts: {
    readonly store: Store;
    /** The scheduler of this process, while it has one (a control plane that does not lead has none). */
    readonly scheduler: () => Scheduler | undefined;
    readonly devices: readonly GpuDevice[];
    readonly loop: () => RunQueue | undefined;
    /** Names of the workflows the platform config declares: the only values of the `workflow` label. */
    readonly workflows?: readonly string[];
    /** Reads the real devices' memory in use and utilization (nvidia-smi); absent where this process does not read them. */
    readonly measure?: () => Promise<MeasuredUse>;
    /** The pools' demand, on the leading control plane with elasticity on (nothing elsewhere: no series). */
    readonly pools?: () => readonly PoolDemandSnapshot[];
  }) {
    const registers = [this.registry];
    this.declaredWorkflows = new Set(parts.workflows ?? []);
    collectDefaultMetrics({ register: this.registry, prefix: "gpufabric_agent_" });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Counter<L>({ name, help, labelNames, registers });
    this.submitted = counter("gpufabric_runs_submitted_total", "Runs accepted, per tenant", ["tenant"]);
    this.refused = counter("gpufabric_runs_refused_total", "Submissions refused (invalid, refused by a rule, fitting no GPU), per tenant", ["tenant", "reason"]);
    this.runsFinished = counter("gpufabric_runs_finished_total", "Runs that ended, per tenant and status", ["tenant", "status"]);
    this.stageSeconds = new Histogram({
      name: "gpufabric_stage_duration_seconds",
      help: "Wall time of stage attempts from process start to end, per tenant and outcome",
      labelNames: ["tenant", "outcome", "simulated"],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.dispatchSeconds = new Histogram({
      name: "gpufabric_stage_dispatch_seconds",
      help: "From a stage becoming ready to its process started (queueing for GPUs included), per tenant",
      labelNames: ["tenant"],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 30, 300],
      registers,
    });
    new Gauge({
      name: "gpufabric_queue_stages",
      help: "Stages of unfinished runs by state, per tenant",
      labelNames: ["tenant", "state"],
      registers,
      async collect() {
        this.reset();
        const depth = await parts.store.queueDepth();
        for (const [tenant, counts] of Object.entries(depth.byTenant)) for (const state of QUEUE_STATES) this.set({ tenant, state }, counts[state]);
      },
    });
    new Gauge({
      name: "gpufabric_runs_active",
      help: "Runs accepted and not finished, per tenant",
      labelNames: ["tenant"],
      registers,
      async collect() {
        this.reset();
        const depth = await parts.store.queueDepth();
        for (const [tenant, counts] of Object.entries(depth.byTenant)) this.set({ tenant }, counts.activeRuns);
      },
    });
    new Gauge({
      name: "gpufabric_running_stages",
      help: "Stages the agent is running now, per tenant",
      labelNames: ["tenant"],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const s of parts.loop()?.runningStages() ?? []) counts.set(s.tenant, (counts.get(s.tenant) ?? 0) + 1);
        for (const [tenant, n] of counts) this.set({ tenant }, n);
      },
    });
    new Gauge({
      name: "gpufabric_gpu_memory_total_bytes",
      help: 'Memory of each device; simulated="true" marks devices declared by the pool where no GPU is present',
      labelNames: ["gpu", "simulated"],
      registers,
      collect() {
        for (const d of parts.devices) this.set({ gpu: d.id, simulated: String(d.simulated) }, d.memoryMiB * MIB);
      },
    });
    new Gauge({
      name: "gpufabric_gpu_memory_scheduled_bytes",
      help: "Memory the scheduler has given to running stages on each device",
      labelNames: ["gpu", "simulated"],
      registers,
      collect() {
        this.reset();
        const used = scheduledMiB(parts.loop(), parts.devices);
        for (const d of parts.devices) this.set({ gpu: d.id, simulated: String(d.simulated) }, (used.get(d.id) ?? 0) * MIB);
      },
    });
    // Per tenant and workflow only: a stage label would make one series per ComfyUI node id of every
    // graph ever submitted (unbounded); per-stage figures are the usage API's (GET /v1/usage).
    this.gpuSeconds = counter(
      "gpufabric_gpu_seconds_total",
      "GPU-seconds of ended stage attempts (GPUs held x seconds from process start to end), per tenant and workflow",
      ["tenant", "workflow"]
    );
    this.vramGiBSeconds = counter(
      "gpufabric_vram_gib_seconds_total",
      "VRAM-GiB-seconds of ended stage attempts (GPUs x VRAM reserved per GPU in GiB x seconds), per tenant and workflow",
      ["tenant", "workflow"]
    );
    registerDcgmGauges(registers, parts.devices, parts.measure);
    registerPoolGauges(registers, parts.pools ?? (() => []));
    new Gauge({
      name: "gpufabric_tenant_gpus_held",
      help: "GPUs each tenant's running stages hold",
      labelNames: ["tenant"],
      registers,
      collect() {
        for (const t of parts.scheduler()?.tenantUsage() ?? []) this.set({ tenant: t.name }, t.heldGpus);
      },
    });
  }

  runSubmitted(tenant: string): void {
    this.submitted.inc({ tenant });
  }

  runRefused(tenant: string, reason: string): void {
    this.refused.inc({ tenant, reason });
  }

  stageStarted(tenant: string, dispatchSeconds: number): void {
    this.dispatchSeconds.observe({ tenant }, dispatchSeconds);
  }

  stageFinished(tenant: string, outcome: "succeeded" | "failed" | "cancelled" | "preempted", seconds: number, simulated: boolean): void {
    this.stageSeconds.observe({ tenant, outcome, simulated: String(simulated) }, seconds);
  }

  runFinished(tenant: string, status: "succeeded" | "failed"): void {
    this.runsFinished.inc({ tenant, status });
  }

  attemptEnded(usage: AttemptUsage): void {
    // Inline documents name themselves: only declared names become label values, so a tenant cannot
    // grow the series without bound by submitting graphs under ever new names.
    const workflow = usage.workflow !== undefined && this.declaredWorkflows.has(usage.workflow) ? usage.workflow : INLINE_WORKFLOW;
    const gpuSeconds = usage.gpus * Math.max(0, usage.seconds);
    this.gpuSeconds.inc({ tenant: usage.tenant, workflow }, gpuSeconds);
    this.vramGiBSeconds.inc({ tenant: usage.tenant, workflow }, (gpuSeconds * usage.vramMiBPerGpu) / 1024);
  }

  /**
   * The exposition text for one tenant: series labelled with another tenant are left out, so a
   * tenant's token reveals nothing about the others' work.
   */
  async textFor(tenant: string): Promise<string> {
    const text = await this.registry.metrics();
    const label = /tenant="((?:[^"\\]|\\.)*)"/;
    return text
      .split("\n")
      .filter((line) => {
        if (line.startsWith("#")) return true;
        const m = label.exec(line);
        return m === null || m[1] === tenant;
      })
      .join("\n");
  }
}

/**
 * The demand controller's numbers per pool: what KEDA or an operator's own autoscaler reads, and what the
 * built-in scaler asks for. Only the leader computes them; a follower exports no series, so
 * `max(gpufabric_pool_desired_workers{pool="…"})` over the replicas is the leader's number.
 */
function registerPoolGauges(registers: Registry[], pools: () => readonly PoolDemandSnapshot[]): void {
  const gauge = (name: string, help: string, value: (p: PoolDemandSnapshot) => number) =>
    new Gauge<"pool">({
      name,
      help,
      labelNames: ["pool"],
      registers,
      collect() {
        this.reset();
        for (const p of pools()) this.set({ pool: p.pool }, value(p));
      },
    });
  gauge("gpufabric_pool_desired_workers", "Workers (GPU nodes) the pool's queued work needs now, within its min and max", (p) => p.desired);
  gauge("gpufabric_pool_current_workers", "Workers of the pool up or starting, not draining", (p) => p.current);
  gauge("gpufabric_pool_ready_workers", "Workers of the pool registered with the control plane and not draining", (p) => p.ready);
}

/** MiB the running stages hold on each device, from their declared VRAM. */
export function scheduledMiB(loop: RunQueue | undefined, devices: readonly GpuDevice[]): Map<string, number> {
  const used = new Map<string, number>();
  if (loop === undefined) return used;
  for (const s of loop.runningStages()) {
    const vram = loop.stageSpec(s.runId, s.stageId)?.resources.vramMiB ?? 0;
    for (const gpu of s.gpus) if (devices.some((d) => d.id === gpu)) used.set(gpu, (used.get(gpu) ?? 0) + vram);
  }
  return used;
}

/**
 * DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE (MiB) and DCGM_FI_DEV_GPU_UTIL (%), named and labelled as
 * NVIDIA's dcgm-exporter names them, for the real GPUs nvidia-smi reads here. A simulated device, a MIG
 * instance (nvidia-smi's per-GPU query does not break it down) or a GPU nvidia-smi did not answer for
 * exports nothing under these names: a DCGM series is a reading of hardware, and a made-up one would
 * pass for it on every board that sums them. The scheduler's view of every device stays in
 * gpufabric_gpu_memory_scheduled_bytes. One reading serves the three gauges of a scrape.
 */
function registerDcgmGauges(registers: Registry[], devices: readonly GpuDevice[], measure: (() => Promise<MeasuredUse>) | undefined): void {
  const real = devices.filter((d): d is GpuDevice & { uuid: string } => !d.simulated && d.uuid !== null && d.uuid.startsWith("GPU-"));
  let reading: { at: number; value: Promise<MeasuredUse> } | undefined;
  const read = (): Promise<MeasuredUse> => {
    if (measure === undefined || real.length === 0) return Promise.resolve(new Map());
    if (reading === undefined || Date.now() - reading.at > 1_000) reading = { at: Date.now(), value: measure().catch(() => new Map()) };
    return reading.value;
  };
  const gauge = (name: string, help: string, value: (d: GpuDevice, m: { usedMiB: number | undefined; utilPercent: number | undefined }) => number | undefined) =>
    new Gauge<DcgmLabel>({
      name,
      help,
      labelNames: DCGM_LABELS,
      registers,
      async collect() {
        this.reset();
        const measured = await read();
        for (const d of real) {
          const m = measured.get(d.uuid);
          const v = m === undefined ? undefined : value(d, m);
          if (v !== undefined) this.set(dcgmLabels(d), v);
        }
      },
    });
  gauge("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", (_d, m) => m.usedMiB);
  gauge("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", (d, m) => (m.usedMiB === undefined ? undefined : Math.max(0, d.memoryMiB - m.usedMiB)));
  gauge("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", (_d, m) => m.utilPercent);
}

/** gpu: the index on its node; device: the nvidia<N> device file's name; Hostname: the node. */
export function dcgmLabels(d: GpuDevice & { uuid: string }): Record<DcgmLabel, string> {
  return { gpu: String(d.index), UUID: d.uuid, device: `nvidia${d.index}`, modelName: d.name, Hostname: d.node };
}
