import type { GpuSpec } from "../../runtime/scheduler/inventory.ts";
import type { Decision, Placement, RunSpec, StageSpec, Waiting } from "../../runtime/scheduler/types.ts";

export const GiB = 1024;

export function gpu(id: string, node: string, memoryGiB: number, slots = 1): GpuSpec {
  return { id, node, model: "TEST", memoryMiB: memoryGiB * GiB, slots };
}

export function stage(id: string, vramGiB: number, extra: Partial<StageSpec> = {}): StageSpec {
  return { id, needs: [], gpus: 1, vramMiB: vramGiB * GiB, durationS: 10, modelLoadS: 0, ...extra };
}

export function run(id: string, stages: StageSpec[], extra: Partial<RunSpec> = {}): RunSpec {
  return { id, tenant: "t", priority: "batch", stages, ...extra };
}

export const placed = (ds: Decision[]): Placement[] => ds.filter((d): d is Placement => d.kind === "placed");
export const waiting = (ds: Decision[]): Waiting[] => ds.filter((d): d is Waiting => d.kind === "waiting");
