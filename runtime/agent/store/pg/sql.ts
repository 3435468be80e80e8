/**
 * The small statements the PostgreSQL store's operations share.
 *
 * Locking order, which every write follows so that two transactions never wait on each other in a cycle:
 * the run's row first (`lockRun`), then its stages and attempts, attempts in id order. Taking the run's
 * row also serializes every write to one run, which keeps its event ids in commit order: a client that
 * resumes a run's events after the last id it saw cannot miss one committed later with a smaller id.
 */
import { createHash } from "node:crypto";
import { TransitionError } from "../types.ts";
import { RUN_COLUMNS, type AttemptRow, type RunRow } from "../rows.ts";
import { checkOpen } from "../transitions.ts";
import { named, type Tx } from "./connection.ts";

export type Wake = "ready" | "placed";

/** The channel of a schema's wake-ups ("ready": stages became ready; "placed": attempts await a worker). */
export function channel(schema: string, what: Wake): string {
  const name = `gpufabric.${schema}.${what}`;
  // Channel names are identifiers: at most 63 bytes.
  return name.length <= 63 ? name : `gpufabric.${createHash("sha256").update(schema).digest("hex").slice(0, 32)}.${what}`;
}

export interface OpContext {
  readonly schema: string;
  /** The time written into records (the database's clock decides lease expiry). */
  stamp(): string;
}

export async function insertEvent(tx: Tx, runId: string, stageId: string | null, type: string, data: Record<string, unknown>, at: string): Promise<void> {
  await tx.query(named("INSERT INTO events (run_id, stage_id, type, data, at) VALUES ($1, $2, $3, $4, $5)"), [runId, stageId, type, JSON.stringify(data), at]);
}

/** A hint, delivered when the transaction commits (and folded with others of the same transaction). */
export async function notify(tx: Tx, ctx: OpContext, what: Wake): Promise<void> {
  await tx.query(named("SELECT pg_notify($1, '')"), [channel(ctx.schema, what)]);
}

export async function lockRun(tx: Tx, runId: string): Promise<RunRow | undefined> {
  const { rows } = await tx.query<RunRow>(named(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1 FOR UPDATE`), [runId]);
  return rows[0];
}

export async function setRunStatus(tx: Tx, runId: string, status: string, now: string): Promise<void> {
  await tx.query(named("UPDATE runs SET status = $2, updated_at = $3 WHERE id = $1"), [runId, status, now]);
}

export async function setStageStatus(tx: Tx, runId: string, stageId: string, status: string, now: string): Promise<void> {
  await tx.query(named("UPDATE stages SET status = $3, updated_at = $4 WHERE run_id = $1 AND stage_id = $2"), [runId, stageId, status, now]);
}

export async function attemptById(tx: Tx, attemptId: string): Promise<AttemptRow | undefined> {
  const { rows } = await tx.query<AttemptRow>(named("SELECT * FROM attempts WHERE id = $1"), [attemptId]);
  return rows[0];
}

/** Locks the attempt's run, then the attempt, and checks it is open (see the locking order above). */
export async function lockOpenAttempt(tx: Tx, attemptId: string): Promise<AttemptRow> {
  const { rows } = await tx.query<{ run_id: string }>(named("SELECT run_id FROM attempts WHERE id = $1"), [attemptId]);
  if (rows.length === 0) throw new TransitionError(`attempt '${attemptId}' does not exist`, null);
  await lockRun(tx, rows[0]!.run_id);
  const locked = await tx.query<AttemptRow>(named("SELECT * FROM attempts WHERE id = $1 FOR UPDATE"), [attemptId]);
  return checkOpen(attemptId, locked.rows[0]);
}

/** Closes an open attempt (succeeded, failed, interrupted, cancelled); what the executor reported is kept. */
export async function closeAttempt(
  tx: Tx,
  p: { id: string; status: string; reason: string; now: string; exit_code: number | null; signal: string | null; peak: number | null; simulated: number }
): Promise<AttemptRow> {
  const { rows } = await tx.query<AttemptRow>(
    named(`UPDATE attempts SET status = $2, finished_at = $3, reason = $4,
       exit_code = COALESCE($5, exit_code), signal = COALESCE($6, signal),
       peak_vram_mib = COALESCE($7, peak_vram_mib), simulated = simulated OR $8
     WHERE id = $1 RETURNING *`),
    [p.id, p.status, p.now, p.reason, p.exit_code, p.signal, p.peak, p.simulated === 1]
  );
  return rows[0]!;
}
