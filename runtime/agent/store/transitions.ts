/**
 * The state machine both stores apply, as the rules and messages they share: which transitions apply to
 * which states, what a refused one says, and what the events of each record. A store only reads the rows
 * (locked, in PostgreSQL), asks these rules, and writes what they decide.
 *
 *   run:     queued → running (first placement) → succeeded | failed | cancelled
 *   stage:   waiting → ready (all needs succeeded) → placed → running → sealing → succeeded
 *            ready ← placed | running | sealing   (retry, interrupted attempt)
 *            → failed (no retry) ; → cancelled (run cancelled, or failed before it started)
 *   attempt: placed → running → sealing → succeeded ; any open state → failed | interrupted | cancelled
 */
import { ValidationError } from "../../config/errors.ts";
import type { AttemptRow, RunRow, StageRow } from "./rows.ts";
import { TransitionError, type AttemptStatus, type FailInput, type NewRun, type NewStage, type RunRecord, type StageStatus } from "./types.ts";

/** Why recover() closed an attempt. */
export const INTERRUPTED_REASON = "interrupted: the agent stopped while the attempt was open";

export function isOpenAttempt(status: string): boolean {
  return status === "placed" || status === "running" || status === "sealing";
}
export function isActiveRun(status: string): boolean {
  return status === "queued" || status === "running";
}

export function initialStageStatus(stage: NewStage): StageStatus {
  return stage.needs.length === 0 ? "ready" : "waiting";
}

/** The record of a run just accepted (what createRun returns without reading it back). */
export function acceptedRun(input: NewRun, id: string, now: string): RunRecord {
  return {
    id,
    tenant: input.tenant,
    workflow: input.workflow,
    format: input.format,
    priority: input.priority,
    status: "queued",
    idempotencyKey: input.idempotencyKey ?? null,
    submittedBy: input.submittedBy ?? null,
    createdAt: now,
    updatedAt: now,
  };
}

export function acceptedEvent(input: NewRun): Record<string, unknown> {
  return { workflow: input.workflow, stages: input.stages.length, priority: input.priority };
}

/** A stage can be placed only while its run is active and it is ready. */
export function checkPlaceable(runId: string, stageId: string, run: RunRow | undefined, stage: StageRow | undefined): asserts run is RunRow {
  if (!run) throw new TransitionError(`run '${runId}' does not exist`, null);
  if (!isActiveRun(run.status)) throw new TransitionError(`run '${run.id}' is ${run.status}: its stages can no longer be placed`, run.status);
  if (!stage) throw new TransitionError(`run '${run.id}' has no stage '${stageId}'`, null);
  if (stage.status !== "ready") {
    throw new TransitionError(`stage '${stage.stage_id}' of run '${run.id}' is ${stage.status}, not ready: it cannot be placed`, stage.status);
  }
}

/** An attempt accepts reports only while open (a report after a cancel or a recovery is stale). */
export function checkOpen(attemptId: string, a: AttemptRow | undefined): AttemptRow {
  if (!a) throw new TransitionError(`attempt '${attemptId}' does not exist`, null);
  if (!isOpenAttempt(a.status)) throw new TransitionError(`attempt ${a.number} of stage '${a.stage_id}' is already closed (${a.status})`, a.status);
  return a;
}

/** An open attempt moves one step at a time: placed → running → sealing → succeeded. */
export function checkStep(a: AttemptRow, from: AttemptStatus, to: AttemptStatus): void {
  if (a.status !== from) throw new TransitionError(`attempt ${a.number} of stage '${a.stage_id}' is ${a.status}, not ${from}: it cannot become ${to}`, a.status);
}

/** Two outputs of one stage with the same name: the whole transition is undone, the attempt stays sealing. */
export function duplicateArtifact(index: number, name: string): ValidationError {
  return new ValidationError("artifacts", [{ field: `artifacts[${index}].name`, message: `duplicate name '${name}': each output of a stage has its own name` }]);
}

export function placedEvent(number: number, attemptId: string, gpus: readonly string[], explanation: unknown): Record<string, unknown> {
  return { attempt: number, attemptId, gpus, explanation: explanation ?? null };
}

export function stepEvent(a: AttemptRow, data: Record<string, unknown>): Record<string, unknown> {
  return { attempt: a.number, attemptId: a.id, ...data };
}

/** What a failed attempt does to its stage: back to ready (retry) or failed, which fails an active run. */
export function failureOutcome(a: AttemptRow, failure: FailInput) {
  return {
    stageStatus: (failure.retry ? "ready" : "failed") as StageStatus,
    event: failure.retry ? "stage.retrying" : "stage.failed",
    data: { attempt: a.number, attemptId: a.id, reason: failure.reason, exitCode: failure.exitCode ?? null, signal: failure.signal ?? null },
    runFailedData: { stage: a.stage_id, reason: failure.reason },
  };
}

/** After an interrupted attempt, its stage runs again unless it already left the attempt's states (cancelled, failed). */
export function requeuesStage(stageStatus: string): boolean {
  return stageStatus === "placed" || stageStatus === "running" || stageStatus === "sealing";
}

export function interruptedEvent(a: AttemptRow): Record<string, unknown> {
  return { attempt: a.number, attemptId: a.id, was: a.status };
}
