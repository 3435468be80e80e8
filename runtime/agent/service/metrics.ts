/**
 * Prometheus metrics (prom-client, a registry of the agent's own): `gpufabric_*` names with their
 * units, labelled by tenant where they concern one. Gauges are read from the store and the loop at
 * scrape time, so they never drift from the truth.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Scheduler } from "../../scheduler/index.ts";
import type { GpuDevice } from "../inventory/types.ts";
import type { Store } from "../store/types.ts";
import type { LoopObserver } from "./loop.ts";
import type { RunQueue } from "./run-queue.ts";

const MIB = 1024 * 1024;
const QUEUE_STATES = ["waiting", "ready", "placed", "running", "sealing"] as const;

export class AgentMetrics implements LoopObserver {
  readonly registry = new Registry();
  private readonly submitted: Counter<"tenant">;
  private readonly refused: Counter<"tenant" | "reason">;
  private readonly runsFinished: Counter<"tenant" | "status">;
  private readonly stageSeconds: Histogram<"tenant" | "outcome" | "simulated">;
  private readonly dispatchSeconds: Histogram<"tenant">;

  constructor(parts: {
    readonly store: Store;
    /** The scheduler of this process, while it has one (a control plane that does not lead has none). */
    readonly scheduler: () => Scheduler | undefined;
    readonly devices: readonly GpuDevice[];
    readonly loop: () => RunQueue | undefined;
  }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "gpufabric_agent_" });
    this.submitted = new Counter({ name: "gpufabric_runs_submitted_total", help: "Runs accepted, per tenant", labelNames: ["tenant"], registers });
    this.refused = new Counter({
      name: "gpufabric_runs_refused_total",
      help: "Submissions refused (invalid, refused by a rule, fitting no GPU), per tenant",
      labelNames: ["tenant", "reason"],
      registers,
    });
    this.runsFinished = new Counter({
      name: "gpufabric_runs_finished_total",
      help: "Runs that ended, per tenant and status",
      labelNames: ["tenant", "status"],
      registers,
    });
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
