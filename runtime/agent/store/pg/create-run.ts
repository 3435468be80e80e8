/** createRun: accepts a run with its stages and dependency edges, idempotent on (tenant, idempotency key). */
import { RUN_COLUMNS, toRun, type RunRow } from "../rows.ts";
import { acceptedEvent, acceptedRun, initialStageStatus } from "../transitions.ts";
import type { NewRun, RunRecord } from "../types.ts";
import { timeOrderedUuid } from "../ids.ts";
import type { Tx } from "./connection.ts";
import { insertEvent, notify, type OpContext } from "./sql.ts";

export async function createRun(tx: Tx, ctx: OpContext, input: NewRun): Promise<{ run: RunRecord; created: boolean }> {
  const now = ctx.stamp();
  const id = input.id ?? timeOrderedUuid();
  // ON CONFLICT waits for a concurrent insert of the same key to commit or roll back, so two submissions
  // racing with one key end with one run: the second finds the first's row below.
  const inserted = await tx.query(
    `INSERT INTO runs (id, tenant, workflow, format, priority, status, idempotency_key, submitted_by, document, inputs, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $10)
     ON CONFLICT (tenant, idempotency_key) DO NOTHING`,
    [
      id,
      input.tenant,
      input.workflow,
      input.format,
      input.priority,
      input.idempotencyKey ?? null,
      input.submittedBy ?? null,
      JSON.stringify(input.document ?? null),
      JSON.stringify(input.inputs ?? {}),
      now,
    ]
  );
  if (inserted.rowCount === 0) {
    const { rows } = await tx.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE tenant = $1 AND idempotency_key = $2`, [
      input.tenant,
      input.idempotencyKey,
    ]);
    return { run: toRun(rows[0]!), created: false };
  }
  // One statement per table, whatever the number of stages: arrays unnested server-side.
  const stages = input.stages;
  await tx.query(
    `INSERT INTO stages (run_id, stage_id, ordinal, status, needs, resources, spec, attempts, updated_at)
     SELECT $1, s.stage_id, s.ordinal, s.status, s.needs, s.resources, s.spec, 0, $2
     FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[]) AS s (stage_id, ordinal, status, needs, resources, spec)`,
    [
      id,
      now,
      stages.map((s) => s.id),
      stages.map((_, i) => i),
      stages.map((s) => initialStageStatus(s)),
      stages.map((s) => JSON.stringify(s.needs)),
      stages.map((s) => JSON.stringify(s.resources)),
      stages.map((s) => JSON.stringify(s)),
    ]
  );
  const edges = stages.flatMap((s) => [...new Set(s.needs)].map((need) => [s.id, need] as const));
  if (edges.length > 0) {
    await tx.query(`INSERT INTO stage_needs (run_id, stage_id, need_id) SELECT $1, e.stage_id, e.need_id FROM unnest($2::text[], $3::text[]) AS e (stage_id, need_id)`, [
      id,
      edges.map((e) => e[0]),
      edges.map((e) => e[1]),
    ]);
  }
  await insertEvent(tx, id, null, "run.accepted", acceptedEvent(input), now);
  await notify(tx, ctx, "ready");
  return { run: acceptedRun(input, id, now), created: true };
}
