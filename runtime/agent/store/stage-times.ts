/**
 * What both stores share of the stage-times read (the workflow statistics): its SQL shape, its bounds and
 * the folding of its rows. A stage's time is the wall time of its succeeded attempt, from the start of its
 * process to the attempt's end (outputs sealed): what a person waiting for the stage sees.
 */
import type { WorkflowRunTimes } from "./types.ts";

/** Runs a statistics read looks at, at most. */
export const STAGE_TIMES_MAX_RUNS = 1000;

/** Finished: the run ended, whatever the outcome (its succeeded stages still tell how long they took). */
export const FINISHED_RUN_STATUSES = "('succeeded', 'failed', 'cancelled')";

export interface StageTimesDbRow {
  run_id: string;
  run_status: string;
  created_at: string;
  stage_id: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export function clampRuns(runs: number): number {
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`stageTimes: runs must be a whole number of at least 1, not ${String(runs).slice(0, 30)}`);
  return Math.min(runs, STAGE_TIMES_MAX_RUNS);
}

/** Rows ordered newest run first → one entry per run, its stages in the rows' order. */
export function foldStageTimes(rows: readonly StageTimesDbRow[]): WorkflowRunTimes[] {
  const out: Array<{ runId: string; status: string; createdAt: string; stages: Array<{ stageId: string; seconds: number }> }> = [];
  for (const r of rows) {
    let run = out[out.length - 1];
    if (run?.runId !== r.run_id) {
      run = { runId: r.run_id, status: r.run_status, createdAt: r.created_at, stages: [] };
      out.push(run);
    }
    if (r.stage_id === null || r.started_at === null || r.finished_at === null) continue;
    const seconds = (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000;
    if (Number.isFinite(seconds) && seconds >= 0) run.stages.push({ stageId: r.stage_id, seconds });
  }
  return out as WorkflowRunTimes[];
}
