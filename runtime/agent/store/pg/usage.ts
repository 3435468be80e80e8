/**
 * The PostgreSQL store's usage query: GPU-seconds and VRAM-GiB-seconds of one tenant's attempts over a
 * range, per workflow and stage, with the same arithmetic as the SQLite store's (see UsageRow).
 */
import type { UsageRow } from "../types.ts";
import { toUsageRow, usageRange, type UsageDbRow } from "../usage.ts";
import { named, type Tx } from "./connection.ts";

// Each attempt's process time (start to end, or $4 = now while it runs) clipped to [$2, $3), times its
// GPUs, and times the VRAM its stage reserved on each. Sorted in byte order as SQLite sorts.
const USAGE_SQL = `
  SELECT r.workflow AS workflow, a.stage_id AS stage, COUNT(*)::int AS attempts,
    SUM(jsonb_array_length(a.gpus) * x.secs)::float8 AS gpu_seconds,
    (SUM(jsonb_array_length(a.gpus) * COALESCE((s.resources::jsonb ->> 'vramMiB')::float8, 0) * x.secs) / 1024)::float8 AS vram_gib_seconds
  FROM runs r
  JOIN attempts a ON a.run_id = r.id
  JOIN stages s ON s.run_id = a.run_id AND s.stage_id = a.stage_id
  CROSS JOIN LATERAL (
    SELECT EXTRACT(EPOCH FROM LEAST(COALESCE(a.finished_at, $4::timestamptz), $3::timestamptz) - GREATEST(a.started_at, $2::timestamptz))::float8 AS secs
  ) x
  WHERE r.tenant = $1 AND a.started_at IS NOT NULL AND a.started_at < $3::timestamptz AND COALESCE(a.finished_at, $4::timestamptz) > $2::timestamptz
  GROUP BY r.workflow, a.stage_id
  ORDER BY r.workflow COLLATE "C", a.stage_id COLLATE "C"`;

export async function usage(tx: Tx, tenant: string, from: string, to: string, now: string): Promise<UsageRow[]> {
  const range = usageRange(from, to);
  const { rows } = await tx.query<UsageDbRow>(named(USAGE_SQL), [tenant, range.from, range.to, now]);
  return rows.map((r) => toUsageRow(tenant, r));
}
