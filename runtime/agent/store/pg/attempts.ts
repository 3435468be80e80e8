/**
 * The attempt state machine on PostgreSQL: placement, the executor's reports, and cancellation. Each
 * function runs inside one transaction, takes its locks in the order sql.ts describes, and applies the
 * rules of ../transitions.ts, so both stores refuse and record the same things.
 */
import { closeParams, toAttempt, toRun, type AttemptRow, type StageRow } from "../rows.ts";
import {
  checkPlaceable,
  checkStep,
  duplicateArtifact,
  failureOutcome,
  interruptedEvent,
  isActiveRun,
  placedEvent,
  requeuesStage,
  stepEvent,
} from "../transitions.ts";
import type { ArtifactInput, AttemptRecord, AttemptStatus, CancelResult, FailInput, FinishInput, PlacementInput, StageStatus } from "../types.ts";
import { timeOrderedUuid } from "../ids.ts";
import { named, type Tx } from "./connection.ts";
import { closeAttempt, insertEvent, lockOpenAttempt, lockRun, notify, setRunStatus, setStageStatus, type OpContext } from "./sql.ts";

const UNIQUE_VIOLATION = "23505";

export async function markPlaced(tx: Tx, ctx: OpContext, placement: PlacementInput): Promise<AttemptRecord> {
  const run = await lockRun(tx, placement.runId);
  const stage = run && (await tx.query<StageRow>(named("SELECT * FROM stages WHERE run_id = $1 AND stage_id = $2 FOR UPDATE"), [run.id, placement.stageId])).rows[0];
  checkPlaceable(placement.runId, placement.stageId, run, stage);
  const now = ctx.stamp();
  const id = timeOrderedUuid();
  const number = stage!.attempts + 1;
  const gpus = JSON.stringify(placement.gpus);
  await tx.query(named("UPDATE stages SET status = 'placed', attempts = attempts + 1, updated_at = $3 WHERE run_id = $1 AND stage_id = $2"), [
    run.id,
    placement.stageId,
    now,
  ]);
  const { rows } = await tx.query<AttemptRow>(
    named("INSERT INTO attempts (id, run_id, stage_id, number, status, gpus, placed_at) VALUES ($1, $2, $3, $4, 'placed', $5::jsonb, $6) RETURNING *"),
    [id, run.id, placement.stageId, number, gpus, now]
  );
  await tx.query(named("INSERT INTO placements (attempt_id, run_id, stage_id, gpus, explanation, at) VALUES ($1, $2, $3, $4::jsonb, $5, $6)"), [
    id,
    run.id,
    placement.stageId,
    gpus,
    JSON.stringify(placement.explanation ?? null),
    now,
  ]);
  if (run.status === "queued") {
    await setRunStatus(tx, run.id, "running", now);
    await insertEvent(tx, run.id, null, "run.running", {}, now);
  }
  await insertEvent(tx, run.id, placement.stageId, "stage.placed", placedEvent(number, id, placement.gpus, placement.explanation), now);
  await notify(tx, ctx, "placed");
  return toAttempt(rows[0]!);
}

/** Moves an open attempt and its stage one step; `apply` writes the attempt's side of it. */
async function advance(
  tx: Tx,
  ctx: OpContext,
  attemptId: string,
  from: AttemptStatus,
  to: AttemptStatus & StageStatus,
  apply: (a: AttemptRow, now: string) => Promise<Record<string, unknown>>
): Promise<{ a: AttemptRow; now: string }> {
  const a = await lockOpenAttempt(tx, attemptId);
  checkStep(a, from, to);
  const now = ctx.stamp();
  const data = await apply(a, now);
  await setStageStatus(tx, a.run_id, a.stage_id, to, now);
  await insertEvent(tx, a.run_id, a.stage_id, `stage.${to}`, stepEvent(a, data), now);
  return { a, now };
}

async function reread(tx: Tx, attemptId: string): Promise<AttemptRecord> {
  return toAttempt((await tx.query<AttemptRow>(named("SELECT * FROM attempts WHERE id = $1"), [attemptId])).rows[0]!);
}

export async function markRunning(tx: Tx, ctx: OpContext, attemptId: string, started: { pid: number | null; workspace: string | null }): Promise<AttemptRecord> {
  let updated: AttemptRow | undefined;
  await advance(tx, ctx, attemptId, "placed", "running", async (a, now) => {
    updated = (await tx.query<AttemptRow>(named("UPDATE attempts SET status = 'running', pid = $2, workspace = $3, started_at = $4 WHERE id = $1 RETURNING *"), [a.id, started.pid, started.workspace, now])).rows[0];
    return { pid: started.pid };
  });
  return toAttempt(updated!);
}

export async function markSealing(tx: Tx, ctx: OpContext, attemptId: string, finish: FinishInput): Promise<AttemptRecord> {
  let updated: AttemptRow | undefined;
  await advance(tx, ctx, attemptId, "running", "sealing", async (a) => {
    updated = (
      await tx.query<AttemptRow>(named("UPDATE attempts SET status = 'sealing', exit_code = $2, signal = $3, peak_vram_mib = $4, simulated = $5 WHERE id = $1 RETURNING *"), [
        a.id,
        finish.exitCode ?? null,
        finish.signal ?? null,
        finish.peakVramMiB ?? null,
        Boolean(finish.simulated),
      ])
    ).rows[0];
    return { exitCode: finish.exitCode ?? null };
  });
  return toAttempt(updated!);
}

export async function markSucceeded(
  tx: Tx,
  ctx: OpContext,
  attemptId: string,
  result: FinishInput & { readonly artifacts: readonly ArtifactInput[] }
): Promise<AttemptRecord> {
  const { a, now } = await advance(tx, ctx, attemptId, "sealing", "succeeded", async (a, now) => {
    await closeAttempt(tx, closeParams(a.id, "succeeded", "completed", result, now));
    // A name given twice is refused before any insert, so the error names the second one as the SQLite store's does.
    const seen = new Set<string>();
    result.artifacts.forEach((art, i) => {
      if (seen.has(art.name)) throw duplicateArtifact(i, art.name);
      seen.add(art.name);
    });
    for (const [i, art] of result.artifacts.entries()) {
      try {
        await tx.query(named("INSERT INTO artifacts (run_id, stage_id, name, attempt_id, bytes, sha256, path, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"), [
          a.run_id,
          a.stage_id,
          art.name,
          a.id,
          art.bytes,
          art.sha256,
          art.path,
          now,
        ]);
      } catch (err) {
        // The transaction is rolled back whole: the attempt stays sealing.
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw duplicateArtifact(i, art.name);
        throw err;
      }
    }
    return { artifacts: result.artifacts.map((x) => ({ name: x.name, bytes: x.bytes })), simulated: Boolean(result.simulated) };
  });
  // Dependents whose needs have now all succeeded (this stage was marked succeeded above).
  const ready = await tx.query<{ stage_id: string }>(
    named(`UPDATE stages s SET status = 'ready', updated_at = $3
     WHERE s.run_id = $1 AND s.status = 'waiting'
       AND s.stage_id IN (SELECT e.stage_id FROM stage_needs e WHERE e.run_id = $1 AND e.need_id = $2)
       AND NOT EXISTS (
         SELECT 1 FROM stage_needs n JOIN stages d ON d.run_id = n.run_id AND d.stage_id = n.need_id
         WHERE n.run_id = s.run_id AND n.stage_id = s.stage_id AND d.status <> 'succeeded')
     RETURNING s.stage_id, s.ordinal`),
    [a.run_id, a.stage_id, now]
  );
  const promoted = (ready.rows as Array<{ stage_id: string; ordinal: number }>).sort((x, y) => x.ordinal - y.ordinal);
  for (const { stage_id } of promoted) await insertEvent(tx, a.run_id, stage_id, "stage.ready", {}, now);
  if (promoted.length > 0) await notify(tx, ctx, "ready");
  const left = await tx.query<{ n: number }>(named("SELECT COUNT(*) AS n FROM stages WHERE run_id = $1 AND status <> 'succeeded'"), [a.run_id]);
  const run = (await tx.query<{ status: string }>(named("SELECT status FROM runs WHERE id = $1"), [a.run_id])).rows[0]!;
  if (left.rows[0]!.n === 0 && run.status === "running") {
    await setRunStatus(tx, a.run_id, "succeeded", now);
    await insertEvent(tx, a.run_id, null, "run.succeeded", {}, now);
  }
  return reread(tx, attemptId);
}

export async function markFailed(tx: Tx, ctx: OpContext, attemptId: string, failure: FailInput): Promise<AttemptRecord> {
  const a = await lockOpenAttempt(tx, attemptId);
  const now = ctx.stamp();
  const closed = await closeAttempt(tx, closeParams(a.id, "failed", failure.reason, failure, now));
  const outcome = failureOutcome(a, failure);
  await setStageStatus(tx, a.run_id, a.stage_id, outcome.stageStatus, now);
  await insertEvent(tx, a.run_id, a.stage_id, outcome.event, outcome.data, now);
  if (failure.retry) await notify(tx, ctx, "ready");
  else {
    const run = (await tx.query<{ status: string }>(named("SELECT status FROM runs WHERE id = $1"), [a.run_id])).rows[0]!;
    if (isActiveRun(run.status)) {
      // Stages not started can never run now; stages already running finish and are recorded.
      await tx.query(named("UPDATE stages SET status = 'cancelled', updated_at = $2 WHERE run_id = $1 AND status IN ('waiting', 'ready')"), [a.run_id, now]);
      await setRunStatus(tx, a.run_id, "failed", now);
      await insertEvent(tx, a.run_id, null, "run.failed", outcome.runFailedData, now);
    }
  }
  return toAttempt(closed);
}

export async function cancelRun(tx: Tx, ctx: OpContext, tenant: string, runId: string): Promise<CancelResult | undefined> {
  const run = await lockRun(tx, runId);
  if (!run || run.tenant !== tenant) return undefined;
  if (!isActiveRun(run.status)) return { run: toRun(run), cancelled: false, stoppedAttempts: [] };
  const now = ctx.stamp();
  const open = await tx.query<AttemptRow>(named("SELECT * FROM attempts WHERE run_id = $1 AND status IN ('placed', 'running', 'sealing') ORDER BY id FOR UPDATE"), [runId]);
  const stopped: AttemptRecord[] = [];
  for (const a of open.rows) stopped.push(toAttempt(await closeAttempt(tx, closeParams(a.id, "cancelled", "cancelled", {}, now))));
  await tx.query(
    named("UPDATE stages SET status = 'cancelled', updated_at = $2 WHERE run_id = $1 AND status IN ('waiting', 'ready', 'placed', 'running', 'sealing')"),
    [runId, now]
  );
  await setRunStatus(tx, runId, "cancelled", now);
  await insertEvent(tx, runId, null, "run.cancelled", { stoppedAttempts: open.rows.map((a) => a.id) }, now);
  return { run: { ...toRun(run), status: "cancelled", updatedAt: now }, cancelled: true, stoppedAttempts: stopped };
}

/**
 * Closes one open attempt as interrupted (its worker's node was lost, not the stage's fault) and puts its
 * stage back to ready: a new attempt runs it elsewhere, and no failure is counted.
 */
export async function markInterrupted(tx: Tx, ctx: OpContext, attemptId: string, reason: string): Promise<AttemptRecord> {
  const a = await lockOpenAttempt(tx, attemptId);
  const now = ctx.stamp();
  const closed = await closeAttempt(tx, closeParams(a.id, "interrupted", reason, {}, now));
  const stage = (await tx.query<{ status: string }>(named("SELECT status FROM stages WHERE run_id = $1 AND stage_id = $2"), [a.run_id, a.stage_id])).rows[0]!;
  if (requeuesStage(stage.status)) {
    await setStageStatus(tx, a.run_id, a.stage_id, "ready", now);
    await notify(tx, ctx, "ready");
  }
  await insertEvent(tx, a.run_id, a.stage_id, "stage.interrupted", { ...interruptedEvent(a), reason }, now);
  return toAttempt(closed);
}
