/**
 * Reads the VRAM in use, per GPU and per process, for the peak-VRAM record of running stages (which
 * feeds the cost model's estimates).
 */
import { readFileSync } from "node:fs";
import { runCommand } from "./command.ts";
import { parseComputeApps, parseGpuQuery, type ComputeAppRow } from "./nvidia-smi-parse.ts";
import type { VramSampler } from "./types.ts";

export const COMPUTE_APPS_ARGS = ["--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"] as const;
const USED_QUERY_ARGS = ["--query-gpu=index,uuid,name,memory.total,memory.used", "--format=csv,noheader,nounits"] as const;

export interface MemorySample {
  /** MiB used per GPU UUID. */
  readonly byGpu: ReadonlyMap<string, number>;
  readonly processes: readonly ComputeAppRow[];
}

/** One reading of memory in use on every GPU, and by every compute process nvidia-smi lists. */
export async function sampleMemoryUsed(nvidiaSmi: string, timeoutMs = 5_000): Promise<MemorySample> {
  const [gpus, apps] = await Promise.all([runCommand(nvidiaSmi, USED_QUERY_ARGS, timeoutMs), runCommand(nvidiaSmi, COMPUTE_APPS_ARGS, timeoutMs)]);
  const byGpu = new Map<string, number>();
  if (gpus.ok) for (const row of parseGpuQuery(gpus.stdout).rows) if (row.memoryUsedMiB !== undefined) byGpu.set(row.uuid, row.memoryUsedMiB);
  return { byGpu, processes: apps.ok ? parseComputeApps(apps.stdout).rows : [] };
}

/** The process group of a pid, from /proc; undefined when the pid is not visible here. */
export function processGroupOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pgrp = Number(fields[2]);
    return Number.isInteger(pgrp) ? pgrp : undefined;
  } catch {
    return undefined;
  }
}

export class NvidiaSmiVramSampler implements VramSampler {
  constructor(private readonly nvidiaSmi: string, private readonly timeoutMs = 5_000) {}

  async sample(gpuUuids: readonly string[], processGroupId: number): Promise<number | undefined> {
    const reading = await sampleMemoryUsed(this.nvidiaSmi, this.timeoutMs);
    return attributeVram(reading, gpuUuids, processGroupId, processGroupOf);
  }
}

/**
 * VRAM of the busiest of the stage's GPUs. When the processes nvidia-smi lists are visible in this pid
 * namespace, only those of the stage's process group count; otherwise (an agent in a container without
 * the host's pids) the GPUs' whole usage is taken, which on exclusive GPUs is the stage's own.
 */
export function attributeVram(
  reading: MemorySample,
  gpuUuids: readonly string[],
  processGroupId: number,
  groupOf: (pid: number) => number | undefined
): number | undefined {
  const mine = new Set(gpuUuids);
  const apps = reading.processes.filter((p) => mine.has(p.gpuUuid));
  const groups = apps.map((p) => groupOf(p.pid));
  if (apps.length > 0 && groups.some((g) => g !== undefined)) {
    const perGpu = new Map<string, number>();
    apps.forEach((p, i) => {
      if (groups[i] === processGroupId && p.usedMiB !== undefined) perGpu.set(p.gpuUuid, (perGpu.get(p.gpuUuid) ?? 0) + p.usedMiB);
    });
    return Math.max(0, ...perGpu.values());
  }
  const used = gpuUuids.map((u) => reading.byGpu.get(u)).filter((v): v is number => v !== undefined);
  return used.length === 0 ? undefined : Math.max(...used);
}
