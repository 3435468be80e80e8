/**
 * The GPUs the scheduler places stages on: built from a platform config's pools (as the agent
 * does) or from a spec string for capacity planning, e.g. `8xH100-80,8xL40S-48,16xA10G-24`.
 */
import type { PoolConfig } from "../config/schema.ts";
import { ValidationError, type FieldIssue } from "../config/errors.ts";

export interface GpuSpec {
  /** Stable id, e.g. `h100-80-n0-g3`. */
  readonly id: string;
  /** Node the GPU sits on; a multi-GPU stage gets GPUs of one node only. */
  readonly node: string;
  /** GPU model, e.g. `H100`. */
  readonly model: string;
  readonly memoryMiB: number;
  /** Stages that may run on the GPU at once: 1 when exclusive, the replica count under time-slicing. */
  readonly slots: number;
}

export const MIB_PER_GIB = 1024;
/** GPUs per node when a spec does not say. */
export const DEFAULT_GPUS_PER_NODE = 8;

const SPEC_ITEM = /^(?:(\d+)x)?(?:(\d+)x)?([A-Za-z][A-Za-z0-9_.]*)-(\d+(?:\.\d+)?)(?::(\d+))?$/;

/**
 * Parses a pool spec: comma-separated items `COUNTxMODEL-GiB`, where COUNT defaults to 1.
 * GPUs are grouped into nodes of 8 (or COUNT when smaller); `NODESxPERNODExMODEL-GiB`
 * (e.g. `2x8xH100-80`) or a `:PERNODE` suffix (e.g. `16xH100-80:4`) sets the grouping.
 */
export function parsePoolSpec(spec: string, field = "pool"): GpuSpec[] {
  const issues: FieldIssue[] = [];
  const gpus: GpuSpec[] = [];
  if (typeof spec !== "string" || spec.trim() === "") {
    throw new ValidationError("pool spec", [{ field, message: "is empty: give GPUs as COUNTxMODEL-GiB, e.g. 8xH100-80,16xA10G-24" }]);
  }
  const seenModels = new Map<string, number>();
  spec.split(",").forEach((raw, i) => {
    const item = raw.trim();
    const itemField = `${field}[${i}]`;
    const m = SPEC_ITEM.exec(item);
    if (!m) {
      issues.push({
        field: itemField,
        message: `'${item}' is not COUNTxMODEL-GiB: write e.g. 8xH100-80 (8 GPUs of 80 GiB), 2x8xH100-80 (2 nodes of 8) or 16xA10G-24:4 (4 per node)`,
      });
      return;
    }
    const [, first, second, model, gib, suffix] = m;
    let count: number;
    let perNode: number | undefined;
    if (second !== undefined) {
      if (suffix !== undefined) {
        issues.push({ field: itemField, message: `'${item}' gives GPUs per node twice (NODESxPERNODEx and :PERNODE): use one form` });
        return;
      }
      count = Number(first) * Number(second);
      perNode = Number(second);
    } else {
      count = first === undefined ? 1 : Number(first);
      perNode = suffix === undefined ? undefined : Number(suffix);
    }
    const memoryGiB = Number(gib);
    if (count < 1) issues.push({ field: `${itemField}.count`, message: `must be at least 1 GPU (got ${count})` });
    if (count > 65_536) issues.push({ field: `${itemField}.count`, message: `${count} GPUs is more than the 65536 a pool spec may hold` });
    if (perNode !== undefined && perNode < 1) issues.push({ field: `${itemField}.gpusPerNode`, message: "must be at least 1" });
    if (!(memoryGiB > 0) || memoryGiB > 4096) issues.push({ field: `${itemField}.memoryGiB`, message: `must be between 1 and 4096 GiB (got ${gib})` });
    if (count < 1 || count > 65_536 || (perNode !== undefined && perNode < 1) || !(memoryGiB > 0) || memoryGiB > 4096) return;
    const groupSize = Math.min(perNode ?? DEFAULT_GPUS_PER_NODE, count);
    const key = `${model!.toLowerCase()}-${gib}`;
    const ordinal = seenModels.get(key) ?? 0;
    seenModels.set(key, ordinal + 1);
    const prefix = ordinal === 0 ? key : `${key}-${ordinal}`;
    for (let g = 0; g < count; g++) {
      const node = `${prefix}-n${Math.floor(g / groupSize)}`;
      gpus.push({ id: `${node}-g${g % groupSize}`, node, model: model!, memoryMiB: Math.round(memoryGiB * MIB_PER_GIB), slots: 1 });
    }
  });
  if (issues.length > 0) throw new ValidationError(`pool spec '${spec}'`, issues);
  return gpus;
}

/** The inventory the live agent schedules on: every device of the given pools. */
export function inventoryFromPools(pools: readonly PoolConfig[]): GpuSpec[] {
  const gpus: GpuSpec[] = [];
  for (const pool of pools) {
    const slots = pool.sharing.mode === "time-slicing" ? pool.sharing.replicas : 1;
    for (const device of pool.devices) {
      gpus.push({ id: device.id, node: `${pool.name}/${device.node}`, model: pool.gpu.model, memoryMiB: device.memoryMiB, slots });
    }
  }
  return gpus;
}

/** One line per GPU kind, e.g. `8x H100 80 GiB (1 node)`. */
export function describeInventory(gpus: readonly GpuSpec[]): string {
  const groups = new Map<string, { count: number; nodes: Set<string> }>();
  for (const g of gpus) {
    const key = `${g.model} ${Math.round(g.memoryMiB / MIB_PER_GIB)} GiB`;
    const group = groups.get(key) ?? { count: 0, nodes: new Set<string>() };
    group.count++;
    group.nodes.add(g.node);
    groups.set(key, group);
  }
  return [...groups].map(([k, v]) => `${v.count}x ${k} (${v.nodes.size} node${v.nodes.size === 1 ? "" : "s"})`).join(", ");
}
