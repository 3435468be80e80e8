/**
 * The PostgreSQL store's reads. Those made of several queries run in one REPEATABLE READ, READ ONLY
 * transaction, so they see one snapshot as the SQLite store's reads do. Text keys sort with the "C"
 * collation: byte order, as SQLite sorts, whatever the database's default collation.
 */
import {
  RUN_COLUMNS,
  clampLimit,
  foldQueueDepth,
  toArtifact,
  toAttempt,
  toEvent,
  toReadyStage,
  toRun,
  toStage,
  type ArtifactRow,
  type AttemptRow,
  type EventRow,
  type ReadyStageRow,
  type RunRow,
  type RunRowWithFields,
  type StageRow,
} from "../rows.ts";
import type { ArtifactRecord, EventRecord, ListedRun, QueueDepth, ReadyStage, RunDetail, RunListOptions, RunRecord, StageRecord } from "../types.ts";
import { named, type Tx } from "./connection.ts";
import { foldStageCounts, listRunsQuery, NO_STAGES } from "../run-list.ts";

export async function getRun(tx: Tx, tenant: string, runId: string): Promise<RunDetail | undefined> {
  const { rows } = await tx.query<RunRowWithFields>(named(`SELECT ${RUN_COLUMNS}, document, inputs FROM runs WHERE tenant = $1 AND id = $2`), [tenant, runId]);
  const row = rows[0];
  if (!row) return undefined;
  const stages = await tx.query<StageRow>(named("SELECT * FROM stages WHERE run_id = $1 ORDER BY ordinal"), [runId]);
  const attempts = await tx.query<AttemptRow>(named('SELECT * FROM attempts WHERE run_id = $1 ORDER BY stage_id COLLATE "C", number'), [runId]);
  const artifacts = await tx.query<ArtifactRow>(named('SELECT * FROM artifacts WHERE run_id = $1 ORDER BY stage_id COLLATE "C", name COLLATE "C"'), [runId]);
  return {
    run: toRun(row),
    document: JSON.parse(row.document) as unknown,
    inputs: JSON.parse(row.inputs) as Record<string, unknown>,
    stages: stages.rows.map(toStage),
    attempts: attempts.rows.map(toAttempt),
    artifacts: artifacts.rows.map(toArtifact),
  };
}

export async function listRuns(tx: Tx, tenant: string, options: RunListOptions): Promise<ListedRun[]> {
  const limit = clampLimit(options.limit, 100, 10_000);
  const dollar = (n: number) => `$${n}`;
  // Prepared by name only without an id list: those vary in length, and each length would be a new statement.
  const query = listRunsQuery(tenant, options, limit, dollar, ' COLLATE "C"');
  const { rows } = await tx.query<RunRow>(options.ids === undefined ? named(query.text) : query.text, query.values);
  const runs = rows.map(toRun);
  if (!options.stageCounts || runs.length === 0) return runs;
  const counts = await tx.query<{ run_id: string; status: string; n: string }>(
    "SELECT run_id, status, COUNT(*) AS n FROM stages WHERE run_id = ANY($1::text[]) GROUP BY run_id, status",
    [runs.map((r) => r.id)]
  );
  const folded = foldStageCounts(counts.rows);
  return runs.map((r) => ({ ...r, stageCounts: folded.get(r.id) ?? NO_STAGES }));
}

export async function activeRuns(tx: Tx): Promise<Array<{ run: RunRecord; stages: StageRecord[] }>> {
  const runs = await tx.query<RunRow>(named(`SELECT ${RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running') ORDER BY created_at, id COLLATE "C"`));
  const stages = await tx.query<StageRow>(
    named("SELECT s.* FROM stages s JOIN runs r ON r.id = s.run_id WHERE r.status IN ('queued', 'running') ORDER BY s.run_id, s.ordinal")
  );
  const byRun = new Map<string, StageRecord[]>();
  for (const row of stages.rows) {
    const list = byRun.get(row.run_id) ?? [];
    list.push(toStage(row));
    byRun.set(row.run_id, list);
  }
  return runs.rows.map((row) => ({ run: toRun(row), stages: byRun.get(row.id) ?? [] }));
}

export async function readyStages(tx: Tx, limit?: number): Promise<ReadyStage[]> {
  const { rows } = await tx.query<ReadyStageRow>(
    named(`SELECT s.*, r.tenant, r.priority, r.created_at AS run_created_at FROM stages s JOIN runs r ON r.id = s.run_id
     WHERE s.status = 'ready' AND r.status IN ('queued', 'running')
     ORDER BY r.created_at, r.id COLLATE "C", s.ordinal LIMIT $1`),
    [clampLimit(limit, 10_000, 1_000_000)]
  );
  return rows.map(toReadyStage);
}

export async function eventsSince(tx: Tx, tenant: string, runId: string, afterEventId: number, limit?: number): Promise<EventRecord[] | undefined> {
  const run = await tx.query(named("SELECT 1 FROM runs WHERE tenant = $1 AND id = $2"), [tenant, runId]);
  if (run.rowCount === 0) return undefined;
  const { rows } = await tx.query<EventRow>(named("SELECT * FROM events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3"), [
    runId,
    afterEventId,
    clampLimit(limit, 1000, 100_000),
  ]);
  return rows.map(toEvent);
}

export async function artifactsOf(tx: Tx, runId: string, stageIds: readonly string[]): Promise<ArtifactRecord[]> {
  const { rows } = await tx.query<ArtifactRow>(
    named('SELECT * FROM artifacts WHERE run_id = $1 AND stage_id = ANY($2::text[]) ORDER BY stage_id COLLATE "C", name COLLATE "C"'),
    [runId, stageIds]
  );
  return rows.map(toArtifact);
}

export async function queueDepth(tx: Tx): Promise<QueueDepth> {
  const stages = await tx.query<{ tenant: string; status: string; n: number }>(
    named(`SELECT r.tenant AS tenant, s.status AS status, COUNT(*) AS n FROM stages s JOIN runs r ON r.id = s.run_id
     WHERE s.status IN ('waiting', 'ready', 'placed', 'running', 'sealing') GROUP BY r.tenant, s.status`)
  );
  const runs = await tx.query<{ tenant: string; n: number }>(named("SELECT tenant, COUNT(*) AS n FROM runs WHERE status IN ('queued', 'running') GROUP BY tenant"));
  return foldQueueDepth(stages.rows, runs.rows);
}

/**
 * Runs with their stages and documents, in one statement: what a leader needs to take up runs another
 * control plane accepted (no attempts or artifacts: they have none yet, or recovery reads them).
 */
export async function runsForIntake(tx: Tx, runIds: readonly string[]): Promise<Array<{ run: RunRecord; document: unknown; stages: StageRecord[] }>> {
  const { rows } = await tx.query<RunRowWithFields & { stage_rows: StageRow[] }>(
    named(`SELECT ${RUN_COLUMNS.split(", ").map((c) => `r.${c}`).join(", ")}, r.document, r.inputs,
       COALESCE((SELECT json_agg(s ORDER BY s.ordinal) FROM stages s WHERE s.run_id = r.id), '[]'::json) AS stage_rows
     FROM runs r WHERE r.id = ANY($1::text[]) ORDER BY r.created_at, r.id`),
    [runIds]
  );
  return rows.map((row) => ({ run: toRun(row), document: JSON.parse(row.document) as unknown, stages: row.stage_rows.map(toStage) }));
}
