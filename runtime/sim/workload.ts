/** A simulated workload: the pool, the tenants and the runs arriving over time. */
import type { SchedulerSettings } from "../config/schema.ts";
import type { GpuSpec } from "../scheduler/inventory.ts";
import type { TenantShare } from "../scheduler/scheduler.ts";
import type { RunSpec } from "../scheduler/types.ts";

export interface Arrival {
  /** Seconds from the start of the simulation. */
  readonly at: number;
  readonly run: RunSpec;
}

export interface Workload {
  readonly name: string;
  readonly gpus: readonly GpuSpec[];
  readonly tenants: readonly TenantShare[];
  /** Sorted by `at`. */
  readonly arrivals: readonly Arrival[];
  /** Actual durations vary by up to ±noise around the estimates (0: exactly as estimated). */
  readonly noise: number;
  readonly settings?: Partial<SchedulerSettings>;
  /** Lower bound of the makespan when the workload knows a tighter one than the generic bound. */
  readonly lowerBoundS?: number;
  /** Best makespan found by an independent search, when the workload has one. */
  readonly bestKnownS?: number;
}
