/**
 * What both stores share of the usage query: the checks of its range and the mapping of its rows.
 * The arithmetic itself is SQL in each store (sqlite-statements.ts, pg/usage.ts), so a month of
 * attempts is summed where it lies instead of being carried into the agent row by row.
 */
import type { UsageRow } from "./types.ts";

/** Times are compared as the stores keep them: toISOString()'s form (UTC, milliseconds). */
export function usageRange(from: string, to: string): { from: string; to: string } {
  const f = new Date(from);
  const t = new Date(to);
  if (typeof from !== "string" || Number.isNaN(f.getTime())) throw new RangeError(`usage: 'from' is not an ISO time: ${String(from).slice(0, 60)}`);
  if (typeof to !== "string" || Number.isNaN(t.getTime())) throw new RangeError(`usage: 'to' is not an ISO time: ${String(to).slice(0, 60)}`);
  if (t.getTime() <= f.getTime()) throw new RangeError("usage: 'to' must be after 'from'");
  return { from: f.toISOString(), to: t.toISOString() };
}

export interface UsageDbRow {
  workflow: string;
  stage: string;
  attempts: number | string;
  gpu_seconds: number | string | null;
  vram_gib_seconds: number | string | null;
}

export function toUsageRow(tenant: string, r: UsageDbRow): UsageRow {
  return {
    tenant,
    workflow: r.workflow,
    stage: r.stage,
    gpuSeconds: Number(r.gpu_seconds ?? 0),
    vramGiBSeconds: Number(r.vram_gib_seconds ?? 0),
    attempts: Number(r.attempts),
  };
}
