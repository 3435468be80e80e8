/** The PostgreSQL store's stage-times read (see ../stage-times.ts). */
import { FINISHED_RUN_STATUSES, clampRuns, foldStageTimes, type StageTimesDbRow } from "../stage-times.ts";
import type { WorkflowRunTimes } from "../types.ts";
import { named, type Tx } from "./connection.ts";

export async function stageTimes(tx: Tx, tenant: string, workflow: string, runs: number): Promise<WorkflowRunTimes[]> {
  const { rows } = await tx.query<StageTimesDbRow>(
    named(
      `WITH recent AS (
         SELECT id, status, created_at FROM runs
         WHERE tenant = $1 AND workflow = $2 AND status IN ${FINISHED_RUN_STATUSES}
         ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $3)
       SELECT r.id AS run_id, r.status AS run_status, r.created_at, a.stage_id, a.started_at, a.finished_at
       FROM recent r LEFT JOIN attempts a ON a.run_id = r.id AND a.status = 'succeeded'
       ORDER BY r.created_at DESC, r.id COLLATE "C" DESC, a.stage_id COLLATE "C"`
    ),
    [tenant, workflow, clampRuns(runs)]
  );
  return foldStageTimes(rows.map((r) => ({ ...r, created_at: iso(r.created_at), started_at: r.started_at === null ? null : iso(r.started_at), finished_at: r.finished_at === null ? null : iso(r.finished_at) })));
}

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}
