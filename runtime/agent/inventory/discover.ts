/**
 * Finds the GPUs the agent runs stages on: the node's real GPUs (and MIG devices) as nvidia-smi
 * reports them, or, where there is no nvidia-smi, the devices the pool declares, marked simulated.
 */
import { hostname } from "node:os";
import type { ComfyUiConfig, PoolConfig } from "../../config/schema.ts";
import { findOnPath, runCommand } from "./command.ts";
import { migProfileMemoryMiB, parseGpuList, parseGpuQuery } from "./nvidia-smi-parse.ts";
import { comfyUiServersInventory } from "./comfyui-servers.ts";
import { InventoryError, type GpuDevice, type RealGpuDevice, type SimulatedGpuDevice } from "./types.ts";

export const GPU_QUERY_ARGS = ["--query-gpu=index,uuid,name,memory.total,memory.used", "--format=csv,noheader,nounits"] as const;
export const GPU_LIST_ARGS = ["-L"] as const;

export interface DiscoverOptions {
  /** The pool this agent serves: the source of simulated devices, and what real ones are checked against. */
  readonly pool: PoolConfig;
  /** `auto` (default): nvidia-smi when on PATH, otherwise simulated. `nvidia-smi`: real GPUs or an error. */
  readonly mode?: "auto" | "nvidia-smi" | "simulated";
  /** Name of this node (default: the host name). */
  readonly node?: string;
  /** PATH searched for nvidia-smi (default: the agent's PATH). */
  readonly path?: string;
  /** Limit for each nvidia-smi call (default 10 s); with ComfyUI server containers, how long to wait for them (default their startTimeoutMs). */
  readonly timeoutMs?: number;
  /**
   * The platform config's `comfyui`. With `image` the node's GPUs are held by the ComfyUI server
   * containers, one each, and read from the servers (unless `mode` is `simulated`): this container
   * has none of its own (see comfyui-servers.ts).
   */
  readonly comfyui?: ComfyUiConfig | null;
  /** Runs nvidia-smi (default: here; a runner runs it in the container that holds the GPUs). */
  readonly run?: typeof runCommand;
}

export interface Inventory {
  /** `comfyui`: the GPUs of the ComfyUI server containers (`comfyui.image`), as their servers report them. */
  readonly source: "nvidia-smi" | "simulated" | "comfyui";
  readonly devices: readonly GpuDevice[];
  /** Things worth a log line: lines nvidia-smi printed that could not be read, mismatches with the pool. */
  readonly warnings: readonly string[];
  /** The nvidia-smi program the devices were read with (for a NvidiaSmiVramSampler); absent when simulated. */
  readonly nvidiaSmi?: string;
}

export { InventoryError };

export async function discoverGpus(options: DiscoverOptions): Promise<Inventory> {
  const mode = options.mode ?? "auto";
  if (mode === "simulated") return simulatedInventory(options.pool, "simulated devices were asked for");
  const comfyui = options.comfyui;
  if (comfyui?.image !== undefined) {
    return comfyUiServersInventory({ comfyui, node: options.node ?? hostname(), waitMs: options.timeoutMs ?? comfyui.startTimeoutMs, pool: options.pool });
  }
  const smi = findOnPath("nvidia-smi", options.path ?? process.env.PATH);
  if (!smi) {
    if (mode === "nvidia-smi") {
      throw new InventoryError("nvidia-smi is not on PATH: install the NVIDIA driver utilities on this node, or run with simulated devices");
    }
    return simulatedInventory(options.pool, "nvidia-smi is not on PATH");
  }
  return realInventory(smi, options);
}

/** The pool's declared devices, each marked simulated: stages run, but on no GPU. */
export function simulatedInventory(pool: PoolConfig, why: string): Inventory {
  const devices: SimulatedGpuDevice[] = pool.devices.map((d) => ({
    id: d.id,
    uuid: null,
    node: d.node,
    index: d.index,
    name: `${pool.gpu.model} (simulated)`,
    memoryMiB: d.memoryMiB,
    memoryUsedMiB: 0,
    ...(d.migProfile === undefined ? {} : { migProfile: d.migProfile }),
    simulated: true,
  }));
  return { source: "simulated", devices, warnings: [`${why}: using the ${devices.length} device(s) pool '${pool.name}' declares, marked simulated`] };
}

async function realInventory(smi: string, options: DiscoverOptions): Promise<Inventory> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const node = options.node ?? hostname();
  const run = options.run ?? runCommand;
  const query = await run(smi, GPU_QUERY_ARGS, timeoutMs);
  if (!query.ok) {
    throw new InventoryError(`${query.message}. Check the NVIDIA driver on this node (nvidia-smi must work), or run with simulated devices`);
  }
  const parsed = parseGpuQuery(query.stdout);
  const warnings = parsed.skipped.map((s) => `nvidia-smi --query-gpu: skipped ${s}`);
  if (parsed.rows.length === 0) {
    throw new InventoryError(
      `nvidia-smi reported no GPU it could read${warnings.length ? ` (${warnings.join("; ")})` : ""}: check the driver and the device plugin`
    );
  }
  const list = await run(smi, GPU_LIST_ARGS, timeoutMs);
  const migByGpu = new Map<string, ReturnType<typeof parseGpuList>["rows"][number]["mig"]>();
  if (list.ok) {
    const listed = parseGpuList(list.stdout);
    warnings.push(...listed.skipped.map((s) => `nvidia-smi -L: skipped ${s}`));
    for (const gpu of listed.rows) migByGpu.set(gpu.uuid, gpu.mig);
  } else {
    warnings.push(`${list.message}: MIG devices, if any, are not listed`);
  }

  const devices: RealGpuDevice[] = [];
  for (const row of [...parsed.rows].sort((a, b) => a.index - b.index)) {
    const mig = migByGpu.get(row.uuid) ?? [];
    if (mig.length === 0) {
      devices.push({
        id: `${node}-g${row.index}`,
        uuid: row.uuid,
        node,
        index: row.index,
        name: row.name,
        memoryMiB: row.memoryTotalMiB,
        memoryUsedMiB: row.memoryUsedMiB ?? 0,
        simulated: false,
      });
      continue;
    }
    // With MIG enabled the schedulable devices are the instances; the GPU itself is not.
    for (const instance of mig) {
      const memory = migProfileMemoryMiB(instance.profile);
      if (memory === undefined) {
        warnings.push(`MIG device ${instance.uuid}: profile '${instance.profile}' names no memory size; skipped`);
        continue;
      }
      devices.push({
        id: `${node}-g${row.index}-mig${instance.deviceIndex}`,
        uuid: instance.uuid,
        node,
        index: row.index,
        name: `${row.name} MIG ${instance.profile}`,
        memoryMiB: memory,
        // nvidia-smi's per-GPU query does not break usage down by MIG instance.
        memoryUsedMiB: 0,
        migProfile: instance.profile,
        simulated: false,
      });
    }
  }
  warnings.push(...checkAgainstPool(parsed.rows, options.pool));
  return { source: "nvidia-smi", devices, warnings, nvidiaSmi: smi };
}

/** Differences between what the node has and what the pool declares: a misconfigured node selector, say. */
function checkAgainstPool(rows: ReturnType<typeof parseGpuQuery>["rows"], pool: PoolConfig): string[] {
  const warnings: string[] = [];
  if (rows.length !== pool.gpusPerNode) {
    warnings.push(`nvidia-smi lists ${rows.length} GPU(s) on this node but pool '${pool.name}' declares ${pool.gpusPerNode} per node`);
  }
  for (const row of rows) {
    if (Math.abs(row.memoryTotalMiB - pool.gpu.memoryMiB) > pool.gpu.memoryMiB * 0.1) {
      warnings.push(
        `GPU ${row.index} (${row.name}) has ${row.memoryTotalMiB} MiB but pool '${pool.name}' declares ${pool.gpu.memoryMiB} MiB (${pool.gpu.model})`
      );
    }
  }
  return warnings;
}
