/** createRun: accepts a run with its stages and dependency edges, idempotent on (tenant, idempotency key). */
import { RUN_COLUMNS, toRun, type RunRow } from "../rows.ts";
import { acceptedEvent, acceptedRun, initialStageStatus } from "../transitions.ts";
import type { NewRun, RunRecord } from "../types.ts";
import { timeOrderedUuid } from "../ids.ts";
import { named, type Tx } from "./connection.ts";
import { channel, type OpContext } from "./sql.ts";

/**
 * One statement, so one round trip and its own transaction (no BEGIN/COMMIT): a submission storm is bound
 * by round trips. The data-modifying CTEs all run; the stages, edges and event are written only when the
 * run's row was (the foreign keys are checked at the statement's end, when the run's row exists).
 * ON CONFLICT waits for a concurrent insert of the same key to commit or roll back, so two submissions
 * racing with one key end with one run: the loser reads the winner's row afterwards.
 */
const INSERT_RUN = `
  WITH run AS (
    INSERT INTO runs (id, tenant, workflow, format, priority, status, idempotency_key, submitted_by, document, inputs, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $10)
    ON CONFLICT (tenant, idempotency_key) DO NOTHING
    RETURNING id),
  stage AS (
    INSERT INTO stages (run_id, stage_id, ordinal, status, needs, resources, spec, attempts, updated_at)
    SELECT run.id, s.stage_id, s.ordinal, s.status, s.needs, s.resources, s.spec, 0, $10
    FROM run, unnest($11::text[], $12::int[], $13::text[], $14::text[], $15::text[], $16::text[]) AS s (stage_id, ordinal, status, needs, resources, spec)),
  edge AS (
    INSERT INTO stage_needs (run_id, stage_id, need_id)
    SELECT run.id, e.stage_id, e.need_id FROM run, unnest($17::text[], $18::text[]) AS e (stage_id, need_id)),
  event AS (
    INSERT INTO events (run_id, stage_id, type, data, at) SELECT run.id, NULL, 'run.accepted', $19, $10 FROM run)
  SELECT run.id, pg_notify($20, $21) AS woke FROM run`;

export async function createRun(tx: Tx, ctx: OpContext, input: NewRun): Promise<{ run: RunRecord; created: boolean }> {
  const now = ctx.stamp();
  const id = input.id ?? timeOrderedUuid();
  const stages = input.stages;
  const edges = stages.flatMap((s) => [...new Set(s.needs)].map((need) => [s.id, need] as const));
  // Named: parsed and planned once per connection, not once per submission.
  const inserted = await tx.query(named(INSERT_RUN), [
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
    stages.map((s) => s.id),
    stages.map((_, i) => i),
    stages.map((s) => initialStageStatus(s)),
    stages.map((s) => JSON.stringify(s.needs)),
    stages.map((s) => JSON.stringify(s.resources)),
    stages.map((s) => JSON.stringify(s)),
    edges.map((e) => e[0]),
    edges.map((e) => e[1]),
    JSON.stringify(acceptedEvent(input)),
    // Every run has a stage without needs: it is ready at once. The payload names the run, so a leader
    // takes it up at once without reading every active run (a control plane of a cluster).
    channel(ctx.schema, "ready"),
    `${input.tenant}/${id}`,
  ]);
  if (inserted.rowCount === 1) return { run: acceptedRun(input, id, now), created: true };
  const { rows } = await tx.query<RunRow>(named(`SELECT ${RUN_COLUMNS} FROM runs WHERE tenant = $1 AND idempotency_key = $2`), [input.tenant, input.idempotencyKey]);
  return { run: toRun(rows[0]!), created: false };
}

/**
 * Many runs in one statement (the group commit of a submission storm): one round trip, one plan, one
 * commit for all of them. The same rules as INSERT_RUN, row for row: a run whose (tenant, idempotency
 * key) exists is skipped with its stages, edges and event, and its caller gets the existing run.
 */
const INSERT_RUNS = `
  WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
      AS i (id, tenant, workflow, format, priority, idempotency_key, submitted_by, document, inputs, event, notify)),
  run AS (
    INSERT INTO runs (id, tenant, workflow, format, priority, status, idempotency_key, submitted_by, document, inputs, created_at, updated_at)
    SELECT id, tenant, workflow, format, priority, 'queued', idempotency_key, submitted_by, document, inputs, $12::timestamptz, $12::timestamptz FROM input
    ON CONFLICT (tenant, idempotency_key) DO NOTHING
    RETURNING id),
  stage AS (
    INSERT INTO stages (run_id, stage_id, ordinal, status, needs, resources, spec, attempts, updated_at)
    SELECT s.run_id, s.stage_id, s.ordinal, s.status, s.needs, s.resources, s.spec, 0, $12::timestamptz
    FROM unnest($13::text[], $14::text[], $15::int[], $16::text[], $17::text[], $18::text[], $19::text[]) AS s (run_id, stage_id, ordinal, status, needs, resources, spec)
    JOIN run ON run.id = s.run_id),
  edge AS (
    INSERT INTO stage_needs (run_id, stage_id, need_id)
    SELECT e.run_id, e.stage_id, e.need_id FROM unnest($20::text[], $21::text[], $22::text[]) AS e (run_id, stage_id, need_id) JOIN run ON run.id = e.run_id),
  event AS (
    INSERT INTO events (run_id, stage_id, type, data, at) SELECT run.id, NULL, 'run.accepted', i.event, $12::timestamptz FROM run JOIN input i ON i.id = run.id)
  SELECT run.id, pg_notify($23, i.notify) AS woke FROM run JOIN input i ON i.id = run.id`;

export async function createRuns(tx: Tx, ctx: OpContext, inputs: readonly NewRun[]): Promise<Array<{ run: RunRecord; created: boolean }>> {
  const now = ctx.stamp();
  const ids = inputs.map((input) => input.id ?? timeOrderedUuid());
  const col = <T>(f: (input: NewRun, id: string) => T) => inputs.map((input, i) => f(input, ids[i]!));
  const stages = inputs.flatMap((input, i) => input.stages.map((s, ordinal) => ({ runId: ids[i]!, s, ordinal })));
  const edges = stages.flatMap(({ runId, s }) => [...new Set(s.needs)].map((need) => [runId, s.id, need] as const));
  const inserted = await tx.query<{ id: string }>(named(INSERT_RUNS), [
    ids,
    col((r) => r.tenant),
    col((r) => r.workflow),
    col((r) => r.format),
    col((r) => r.priority),
    col((r) => r.idempotencyKey ?? null),
    col((r) => r.submittedBy ?? null),
    col((r) => JSON.stringify(r.document ?? null)),
    col((r) => JSON.stringify(r.inputs ?? {})),
    col((r) => JSON.stringify(acceptedEvent(r))),
    col((r, id) => `${r.tenant}/${id}`),
    now,
    stages.map((x) => x.runId),
    stages.map((x) => x.s.id),
    stages.map((x) => x.ordinal),
    stages.map((x) => initialStageStatus(x.s)),
    stages.map((x) => JSON.stringify(x.s.needs)),
    stages.map((x) => JSON.stringify(x.s.resources)),
    stages.map((x) => JSON.stringify(x.s)),
    edges.map((e) => e[0]),
    edges.map((e) => e[1]),
    edges.map((e) => e[2]),
    channel(ctx.schema, "ready"),
  ]);
  const created = new Set(inserted.rows.map((r) => r.id));
  const results: Array<{ run: RunRecord; created: boolean }> = [];
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    if (created.has(ids[i]!)) {
      results.push({ run: acceptedRun(input, ids[i]!, now), created: true });
      continue;
    }
    // Skipped for its idempotency key: the run accepted first with that key (maybe earlier in this batch).
    const { rows } = await tx.query<RunRow>(named(`SELECT ${RUN_COLUMNS} FROM runs WHERE tenant = $1 AND idempotency_key = $2`), [input.tenant, input.idempotencyKey]);
    results.push({ run: toRun(rows[0]!), created: false });
  }
  return results;
}
