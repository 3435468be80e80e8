/**
 * Rows as both databases return them, and their mapping to the store's records. The two stores share
 * table and column names; they differ only in a few column types, which the mapping accepts either way:
 * JSON held as text (SQLite, and PostgreSQL for documents kept byte for byte) or already parsed
 * (PostgreSQL jsonb), booleans as 0/1 (SQLite) or true/false (PostgreSQL).
 */
import type { PriorityClass } from "../../config/schema.ts";
import type { Stage, StageResources, WorkflowFormat } from "../../graph/model.ts";
import type {
  ArtifactRecord,
  AttemptRecord,
  AttemptStatus,
  EventRecord,
  FinishInput,
  QueueCounts,
  RunRecord,
  RunStatus,
  StageRecord,
  StageStatus,
} from "./types.ts";

export interface RunRow {
  id: string;
  tenant: string;
  workflow: string;
  format: string;
  priority: string;
  status: string;
  idempotency_key: string | null;
  submitted_by: string | null;
  created_at: string;
  updated_at: string;
}
export interface RunRowWithFields extends RunRow {
  document: string;
  inputs: string;
}
export interface StageRow {
  run_id: string;
  stage_id: string;
  status: string;
  needs: string | unknown;
  resources: string | unknown;
  spec: string | unknown;
  attempts: number;
  updated_at: string;
}
export interface AttemptRow {
  id: string;
  run_id: string;
  stage_id: string;
  number: number;
  status: string;
  gpus: string | unknown;
  workspace: string | null;
  pid: number | null;
  placed_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  signal: string | null;
  reason: string | null;
  peak_vram_mib: number | null;
  simulated: number | boolean;
  /** PostgreSQL only: the worker holding the attempt's lease, and until when. */
  lease_owner?: string | null;
  lease_expires_at?: string | null;
}
export interface ArtifactRow {
  run_id: string;
  stage_id: string;
  name: string;
  attempt_id: string;
  bytes: number;
  sha256: string;
  path: string;
  created_at: string;
}
export interface EventRow {
  id: number;
  run_id: string;
  stage_id: string | null;
  type: string;
  data: string | unknown;
  at: string;
}
export type ReadyStageRow = StageRow & { tenant: string; priority: string; run_created_at: string };

/** The columns of a RunRecord, without the (large, maybe sealed) document and inputs. */
export const RUN_COLUMNS = "id, tenant, workflow, format, priority, status, idempotency_key, submitted_by, created_at, updated_at";
export const OPEN_ATTEMPT_SQL = "('placed', 'running', 'sealing')";
export const ACTIVE_RUN_SQL = "('queued', 'running')";

function json<T>(value: string | unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

export function toRun(r: RunRow): RunRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    workflow: r.workflow,
    format: r.format as WorkflowFormat,
    priority: r.priority as PriorityClass,
    status: r.status as RunStatus,
    idempotencyKey: r.idempotency_key,
    submittedBy: r.submitted_by ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toStage(r: StageRow): StageRecord {
  return {
    runId: r.run_id,
    stageId: r.stage_id,
    status: r.status as StageStatus,
    needs: json<string[]>(r.needs),
    resources: json<StageResources>(r.resources),
    spec: json<Stage>(r.spec),
    attempts: r.attempts,
    updatedAt: r.updated_at,
  };
}

export function toAttempt(r: AttemptRow): AttemptRecord {
  return {
    id: r.id,
    runId: r.run_id,
    stageId: r.stage_id,
    number: r.number,
    status: r.status as AttemptStatus,
    gpus: json<string[]>(r.gpus),
    workspace: r.workspace,
    pid: r.pid,
    placedAt: r.placed_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
    signal: r.signal,
    reason: r.reason,
    peakVramMiB: r.peak_vram_mib,
    simulated: r.simulated === 1 || r.simulated === true,
  };
}

export function toArtifact(r: ArtifactRow): ArtifactRecord {
  return {
    runId: r.run_id,
    stageId: r.stage_id,
    attemptId: r.attempt_id,
    name: r.name,
    bytes: r.bytes,
    sha256: r.sha256,
    path: r.path,
    createdAt: r.created_at,
  };
}

export function toEvent(r: EventRow): EventRecord {
  return { id: r.id, runId: r.run_id, stageId: r.stage_id, type: r.type, data: json<Record<string, unknown>>(r.data), at: r.at };
}

export function toReadyStage(row: ReadyStageRow) {
  return {
    runId: row.run_id,
    tenant: row.tenant,
    priority: row.priority as PriorityClass,
    runCreatedAt: row.run_created_at,
    stage: toStage(row),
  };
}

/** What closing an attempt records: named parameters, in the form both stores bind. */
export function closeParams(id: string, status: AttemptStatus, reason: string, f: FinishInput, now: string) {
  return {
    id,
    status,
    reason,
    now,
    exit_code: f.exitCode ?? null,
    signal: f.signal ?? null,
    peak: f.peakVramMiB ?? null,
    simulated: f.simulated ? 1 : 0,
  };
}

/** A caller's page size: the fallback when absent, at most `max`; a RangeError naming the value when malformed. */
export function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a whole number of 1 or more (got ${limit})`);
  return Math.min(limit, max);
}

export function checkAfterEventId(afterEventId: number): void {
  if (!Number.isInteger(afterEventId) || afterEventId < 0) {
    throw new RangeError(`afterEventId must be a whole number of 0 or more (got ${afterEventId}): pass the id of the last event seen, or 0`);
  }
}

export type MutableCounts = { -readonly [K in keyof QueueCounts]: number };

export function emptyCounts(): MutableCounts {
  return { waiting: 0, ready: 0, placed: 0, running: 0, sealing: 0 };
}

/** Folds per-(tenant, status) stage counts and per-tenant active run counts into the queue depth. */
export function foldQueueDepth(
  stageCounts: Iterable<{ tenant: string; status: string; n: number }>,
  activeRunCounts: Iterable<{ tenant: string; n: number }>
) {
  const byTenant: Record<string, MutableCounts & { activeRuns: number }> = {};
  const total = emptyCounts();
  const tenantEntry = (t: string) => (byTenant[t] ??= { ...emptyCounts(), activeRuns: 0 });
  for (const row of stageCounts) {
    const status = row.status as keyof QueueCounts;
    tenantEntry(row.tenant)[status] += Number(row.n);
    total[status] += Number(row.n);
  }
  let activeRuns = 0;
  for (const row of activeRunCounts) {
    tenantEntry(row.tenant).activeRuns = Number(row.n);
    activeRuns += Number(row.n);
  }
  return { activeRuns, stages: total, byTenant };
}
