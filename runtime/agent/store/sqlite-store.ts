/**
 * The embedded store: one SQLite database file (better-sqlite3) in the agent's data directory.
 *
 * Durability: WAL journal. `full` (the default) survives power loss: a write settles only once the WAL
 * frames of its commit are on disk (fdatasync of the WAL file), which is what synchronous=FULL does in WAL
 * mode; the sync runs on libuv's thread pool instead of inside COMMIT on the event loop's thread, so the
 * agent keeps parsing and answering requests while the disk syncs. SQLite itself runs with
 * synchronous=NORMAL, which still syncs the WAL before every checkpoint and the database after it.
 * `normal` skips the per-commit sync: it survives a crash of the agent process (`kill -9`) but may lose
 * the last commits on power loss or a kernel panic.
 *
 * Group commit (sqlite-commit.ts): writes queued together are applied in one transaction, each under its
 * own savepoint, and settle only once that transaction is committed and, at `full`, synced. A failed sync
 * makes the store refuse every write until it is reopened.
 *
 * This file holds the operations; the SQL is in sqlite-statements.ts, the rules of each transition (shared
 * with the PostgreSQL store) in transitions.ts, and the row mapping in rows.ts.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { StoreUnavailableError } from "./errors.ts";
import { timeOrderedUuid } from "./ids.ts";
import {
  checkAfterEventId,
  clampLimit,
  closeParams,
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
} from "./rows.ts";
import { fdatasyncAsync, GroupCommit } from "./sqlite-commit.ts";
import { migrate, type Migration } from "./sqlite-migrations.ts";
import { prepareStatements, type SqliteStatements } from "./sqlite-statements.ts";
import { foldStageCounts, listRunsQuery, NO_STAGES, stageCountsQuery } from "./run-list.ts";
import { toUsageRow, usageRange, type UsageDbRow } from "./usage.ts";
import { FINISHED_RUN_STATUSES, clampRuns, foldStageTimes, type StageTimesDbRow } from "./stage-times.ts";
import {
  acceptedEvent,
  acceptedRun,
  checkOpen,
  checkPlaceable,
  checkStep,
  duplicateArtifact,
  failureOutcome,
  initialStageStatus,
  INTERRUPTED_REASON,
  interruptedEvent,
  isActiveRun,
  placedEvent,
  requeuesStage,
  stepEvent,
} from "./transitions.ts";
import type {
  ArtifactInput,
  ArtifactRecord,
  AttemptRecord,
  AttemptStatus,
  CancelResult,
  EventRecord,
  FailInput,
  FinishInput,
  ListedRun,
  NewRun,
  PlacementInput,
  QueueDepth,
  ReadyStage,
  RecoveryReport,
  RunDetail,
  RunListOptions,
  RunRecord,
  StageRecord,
  StageStatus,
  UsageRow,
  Store,
} from "./types.ts";
import type { WorkflowRunTimes } from "./types.ts";
import { validateNewRun, validateTransition } from "./validate-run.ts";

// Kept importable from here, where callers found them before the split.
export { StoreUnavailableError, migrate };

export type Durability = "full" | "normal";

export interface SqliteStoreOptions {
  /** `full` (default) survives power loss; `normal` survives process crashes only. */
  readonly durability?: Durability;
  /** Clock, for tests. */
  readonly now?: () => Date;
  /** Migrations to apply (all by default); tests pass a prefix to build an older database. */
  readonly migrations?: readonly Migration[];
  /** Most writes committed in one transaction (default 512); more wait for the next. */
  readonly maxBatch?: number;
  /** Makes the WAL durable (default: fdatasync on the thread pool); tests stand in a slow or failing disk. */
  readonly syncWal?: (fd: number) => Promise<void>;
  /**
   * At `full`, sync inside COMMIT (synchronous=FULL) instead of after it on the thread pool: for a store on a
   * thread of its own, which has nothing else to do meanwhile (calls arriving during the sync form the next group).
   */
  readonly syncInCommit?: boolean;
}

/** Opens (creating if needed) the database at `file` and brings its schema up to date. */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): SqliteStore {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  return new SqliteStore(new Database(file), options, file === ":memory:" ? undefined : file);
}

export class SqliteStore implements Store {
  readonly schemaVersion: number;
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly stmt: SqliteStatements;
  private readonly commits: GroupCommit;

  /** `file`: the database file, whose WAL is synced at durability `full` (without it, SQLite's synchronous=FULL is used). */
  constructor(db: Database.Database, options: SqliteStoreOptions = {}, file?: string) {
    this.db = db;
    this.now = options.now ?? (() => new Date());
    const full = options.durability !== "normal";
    const wal = String(db.pragma("journal_mode = WAL", { simple: true })) === "wal";
    const walPath = full && wal && file !== undefined && options.syncInCommit !== true ? `${file}-wal` : undefined;
    this.commits = new GroupCommit(db, { maxBatch: options.maxBatch ?? 512, walPath, syncWal: options.syncWal ?? fdatasyncAsync });
    // At `full` the store syncs the WAL itself after each group commit (see above); SQLite syncs it before checkpoints.
    db.pragma(`synchronous = ${full && walPath === undefined ? "FULL" : "NORMAL"}`);
    db.pragma("foreign_keys = ON");
    // Replaced values (rewrapped fields) are zeroed, not left in free pages.
    db.pragma("secure_delete = ON");
    // Another process (a CLI reading the store) may hold the write lock for a moment.
    db.pragma("busy_timeout = 5000");
    this.schemaVersion = migrate(db, options.migrations);
    this.stmt = prepareStatements(db);
  }

  /** The pragmas in effect, and whether each group commit is synced to disk before its writes settle. */
  settings(): { journalMode: string; synchronous: number; syncEachCommit: boolean } {
    const synchronous = Number(this.db.pragma("synchronous", { simple: true }));
    return {
      journalMode: String(this.db.pragma("journal_mode", { simple: true })),
      synchronous,
      syncEachCommit: this.commits.syncsWal || synchronous >= 2,
    };
  }

  async createRun(input: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    validateNewRun(input);
    const s = this.stmt;
    return this.write(() => {
      if (input.idempotencyKey !== undefined) {
        const existing = s.runByKey.get(input.tenant, input.idempotencyKey) as RunRow | undefined;
        if (existing) return { run: toRun(existing), created: false };
      }
      const now = this.stamp();
      const id = input.id ?? timeOrderedUuid();
      s.insertRun.run({
        id,
        tenant: input.tenant,
        workflow: input.workflow,
        format: input.format,
        priority: input.priority,
        idempotency_key: input.idempotencyKey ?? null,
        submitted_by: input.submittedBy ?? null,
        document: JSON.stringify(input.document ?? null),
        inputs: JSON.stringify(input.inputs ?? {}),
        now,
      });
      input.stages.forEach((stage, ordinal) => {
        s.insertStage.run(id, stage.id, ordinal, initialStageStatus(stage), JSON.stringify(stage.needs), JSON.stringify(stage.resources), JSON.stringify(stage), now);
        for (const need of stage.needs) s.insertNeed.run(id, stage.id, need);
      });
      this.event(id, null, "run.accepted", acceptedEvent(input), now);
      return { run: acceptedRun(input, id, now), created: true };
    });
  }

  async getRun(tenant: string, runId: string): Promise<RunDetail | undefined> {
    const s = this.stmt;
    return this.db.transaction(() => {
      const row = s.runByTenant.get(tenant, runId) as RunRowWithFields | undefined;
      if (!row) return undefined;
      return {
        run: toRun(row),
        document: JSON.parse(row.document) as unknown,
        inputs: JSON.parse(row.inputs) as Record<string, unknown>,
        stages: (s.stagesOfRun.all(runId) as StageRow[]).map(toStage),
        attempts: (s.attemptsOfRun.all(runId) as AttemptRow[]).map(toAttempt),
        artifacts: (s.artifactsOfRun.all(runId) as ArtifactRow[]).map(toArtifact),
      };
    })();
  }

  async listRuns(tenant: string, options: RunListOptions = {}): Promise<ListedRun[]> {
    const limit = clampLimit(options.limit, 100, 10_000);
    const query = listRunsQuery(tenant, options, limit, () => "?");
    return this.db.transaction(() => {
      const runs = (this.listStatement(query.text).all(...query.values) as RunRow[]).map(toRun);
      if (!options.stageCounts || runs.length === 0) return runs;
      const counts = stageCountsQuery(runs.map((r) => r.id), () => "?");
      const folded = foldStageCounts(this.listStatement(counts.text).all(...counts.values) as Array<{ run_id: string; status: string; n: number }>);
      return runs.map((r) => ({ ...r, stageCounts: folded.get(r.id) ?? NO_STAGES }));
    })();
  }

  /** The list's statements vary with its filters and page size: each shape is prepared once. */
  private readonly listStatements = new Map<string, Database.Statement>();
  private listStatement(text: string): Database.Statement {
    let statement = this.listStatements.get(text);
    if (statement === undefined) {
      if (this.listStatements.size > 500) this.listStatements.clear();
      statement = this.db.prepare(text);
      this.listStatements.set(text, statement);
    }
    return statement;
  }

  async replaceRunFields(tenant: string, runId: string, fields: { document: unknown; inputs: Readonly<Record<string, unknown>> }): Promise<boolean> {
    const document = JSON.stringify(fields.document ?? null);
    const inputs = JSON.stringify(fields.inputs);
    return this.write(() => this.stmt.replaceRunFields.run(document, inputs, tenant, runId).changes === 1);
  }

  async compact(): Promise<void> {
    await this.commits.drain();
    this.db.pragma("wal_checkpoint(TRUNCATE)");
  }

  async activeRuns(): Promise<Array<{ run: RunRecord; stages: StageRecord[] }>> {
    return this.db.transaction(() =>
      (this.stmt.activeRuns.all() as RunRow[]).map((row) => ({
        run: toRun(row),
        stages: (this.stmt.stagesOfRun.all(row.id) as StageRow[]).map(toStage),
      }))
    )();
  }

  async readyStages(limit?: number): Promise<ReadyStage[]> {
    return (this.stmt.readyStages.all(clampLimit(limit, 10_000, 1_000_000)) as ReadyStageRow[]).map(toReadyStage);
  }

  async markPlaced(placement: PlacementInput): Promise<AttemptRecord> {
    validateTransition("placement", { gpus: placement.gpus });
    const s = this.stmt;
    return this.write(() => {
      const run = s.runById.get(placement.runId) as RunRow | undefined;
      const stage = run && (s.stage.get(placement.runId, placement.stageId) as StageRow | undefined);
      checkPlaceable(placement.runId, placement.stageId, run, stage);
      const now = this.stamp();
      const id = timeOrderedUuid();
      const number = stage!.attempts + 1;
      const gpus = JSON.stringify(placement.gpus);
      s.bumpStageAttempts.run(now, run.id, placement.stageId);
      s.insertAttempt.run(id, run.id, placement.stageId, number, gpus, now);
      s.insertPlacement.run(id, run.id, placement.stageId, gpus, JSON.stringify(placement.explanation ?? null), now);
      if (run.status === "queued") {
        s.setRunStatus.run("running", now, run.id);
        this.event(run.id, null, "run.running", {}, now);
      }
      this.event(run.id, placement.stageId, "stage.placed", placedEvent(number, id, placement.gpus, placement.explanation), now);
      return toAttempt(s.attempt.get(id) as AttemptRow);
    });
  }

  async markRunning(attemptId: string, started: { pid: number | null; workspace: string | null }): Promise<AttemptRecord> {
    validateTransition("start", { pid: started.pid });
    return this.advance(attemptId, "placed", "running", (a, now) => {
      this.stmt.startAttempt.run(started.pid, started.workspace, now, a.id);
      return { pid: started.pid };
    });
  }

  async markSealing(attemptId: string, finish: FinishInput = {}): Promise<AttemptRecord> {
    validateTransition("finish", finish);
    return this.advance(attemptId, "running", "sealing", (a) => {
      this.stmt.sealAttempt.run(finish.exitCode ?? null, finish.signal ?? null, finish.peakVramMiB ?? null, finish.simulated ? 1 : 0, a.id);
      return { exitCode: finish.exitCode ?? null };
    });
  }

  async markSucceeded(attemptId: string, result: FinishInput & { artifacts: readonly ArtifactInput[] }): Promise<AttemptRecord> {
    validateTransition("result", result);
    const s = this.stmt;
    return this.advance(
      attemptId,
      "sealing",
      "succeeded",
      (a, now) => {
        s.closeAttempt.run(closeParams(a.id, "succeeded", "completed", result, now));
        result.artifacts.forEach((art, i) => {
          try {
            s.insertArtifact.run(a.run_id, a.stage_id, art.name, a.id, art.bytes, art.sha256, art.path, now);
          } catch (err) {
            if ((err as { code?: string }).code !== "SQLITE_CONSTRAINT_PRIMARYKEY") throw err;
            // The savepoint undoes this transition's earlier writes: the attempt stays sealing.
            throw duplicateArtifact(i, art.name);
          }
        });
        return { artifacts: result.artifacts.map((x) => ({ name: x.name, bytes: x.bytes })), simulated: Boolean(result.simulated) };
      },
      (a, now) => {
        // Runs after the stage is marked succeeded, so the dependents' check sees it.
        const ready = s.readyDependents.all({ run: a.run_id, stage: a.stage_id }) as Array<{ stage_id: string }>;
        for (const { stage_id } of ready) {
          s.setStageStatus.run("ready", now, a.run_id, stage_id);
          this.event(a.run_id, stage_id, "stage.ready", {}, now);
        }
        const run = s.runById.get(a.run_id) as RunRow;
        const left = (s.unfinishedStages.get(a.run_id) as { n: number }).n;
        if (left === 0 && run.status === "running") {
          s.setRunStatus.run("succeeded", now, a.run_id);
          this.event(a.run_id, null, "run.succeeded", {}, now);
        }
      }
    );
  }

  async markFailed(attemptId: string, failure: FailInput): Promise<AttemptRecord> {
    validateTransition("failure", failure);
    const s = this.stmt;
    return this.write(() => {
      const a = this.openAttempt(attemptId);
      const now = this.stamp();
      s.closeAttempt.run(closeParams(a.id, "failed", failure.reason, failure, now));
      const outcome = failureOutcome(a, failure);
      s.setStageStatus.run(outcome.stageStatus, now, a.run_id, a.stage_id);
      this.event(a.run_id, a.stage_id, outcome.event, outcome.data, now);
      if (!failure.retry && isActiveRun((s.runById.get(a.run_id) as RunRow).status)) {
        // Stages not started can never run now; stages already running finish and are recorded.
        s.cancelNotStartedStages.run(now, a.run_id);
        s.setRunStatus.run("failed", now, a.run_id);
        this.event(a.run_id, null, "run.failed", outcome.runFailedData, now);
      }
      return toAttempt(s.attempt.get(a.id) as AttemptRow);
    });
  }

  async cancelRun(tenant: string, runId: string): Promise<CancelResult | undefined> {
    const s = this.stmt;
    return this.write(() => {
      const row = s.runById.get(runId) as RunRow | undefined;
      if (!row || row.tenant !== tenant) return undefined;
      if (!isActiveRun(row.status)) return { run: toRun(row), cancelled: false, stoppedAttempts: [] };
      const now = this.stamp();
      const open = s.openAttemptsOfRun.all(runId) as AttemptRow[];
      for (const a of open) s.closeAttempt.run(closeParams(a.id, "cancelled", "cancelled", {}, now));
      s.cancelPendingStages.run(now, runId);
      s.setRunStatus.run("cancelled", now, runId);
      this.event(runId, null, "run.cancelled", { stoppedAttempts: open.map((a) => a.id) }, now);
      return {
        run: toRun(s.runById.get(runId) as RunRow),
        cancelled: true,
        stoppedAttempts: open.map((a) => toAttempt(s.attempt.get(a.id) as AttemptRow)),
      };
    });
  }

  async recover(): Promise<RecoveryReport> {
    const s = this.stmt;
    return this.write(() => {
      const now = this.stamp();
      const open = s.openAttempts.all() as AttemptRow[];
      let requeued = 0;
      for (const a of open) {
        s.closeAttempt.run(closeParams(a.id, "interrupted", INTERRUPTED_REASON, {}, now));
        const stage = s.stage.get(a.run_id, a.stage_id) as StageRow;
        if (requeuesStage(stage.status)) {
          s.setStageStatus.run("ready", now, a.run_id, a.stage_id);
          requeued++;
        }
        this.event(a.run_id, a.stage_id, "stage.interrupted", interruptedEvent(a), now);
      }
      return { interrupted: open.map((a) => toAttempt(s.attempt.get(a.id) as AttemptRow)), requeuedStages: requeued };
    });
  }

  async eventsSince(tenant: string, runId: string, afterEventId: number, limit?: number): Promise<EventRecord[] | undefined> {
    checkAfterEventId(afterEventId);
    return this.db.transaction(() => {
      if (!this.stmt.runByTenant.get(tenant, runId)) return undefined;
      return (this.stmt.eventsSince.all(runId, afterEventId, clampLimit(limit, 1000, 100_000)) as EventRow[]).map(toEvent);
    })();
  }

  async artifactsOf(runId: string, stageIds: readonly string[]): Promise<ArtifactRecord[]> {
    const wanted = new Set(stageIds);
    return (this.stmt.artifactsOfRun.all(runId) as ArtifactRow[]).filter((r) => wanted.has(r.stage_id)).map(toArtifact);
  }

  async queueDepth(): Promise<QueueDepth> {
    return this.db.transaction(() =>
      foldQueueDepth(
        this.stmt.stageCounts.all() as Array<{ tenant: string; status: string; n: number }>,
        this.stmt.activeRunCounts.all() as Array<{ tenant: string; n: number }>
      )
    )();
  }

  async usage(tenant: string, from: string, to: string): Promise<UsageRow[]> {
    const range = usageRange(from, to);
    const rows = this.stmt.usage.all({ tenant, ...range, now: this.stamp() }) as UsageDbRow[];
    return rows.map((r) => toUsageRow(tenant, r));
  }

  async stageTimes(tenant: string, workflow: string, runs: number): Promise<WorkflowRunTimes[]> {
    this.stageTimesStmt ??= this.db.prepare(
      `WITH recent AS (
         SELECT id, status, created_at FROM runs
         WHERE tenant = ? AND workflow = ? AND status IN ${FINISHED_RUN_STATUSES}
         ORDER BY created_at DESC, id DESC LIMIT ?)
       SELECT r.id AS run_id, r.status AS run_status, r.created_at, a.stage_id, a.started_at, a.finished_at
       FROM recent r LEFT JOIN attempts a ON a.run_id = r.id AND a.status = 'succeeded'
       ORDER BY r.created_at DESC, r.id DESC, a.stage_id`
    );
    return foldStageTimes(this.stageTimesStmt.all(tenant, workflow, clampRuns(runs)) as StageTimesDbRow[]);
  }
  private stageTimesStmt: Database.Statement | undefined;

  async close(): Promise<void> {
    if (!this.db.open) return;
    try {
      await this.commits.drain();
    } finally {
      this.commits.closeWal();
      this.db.close();
    }
  }

  /** Queues a write for the next group commit; settles once it is committed and durable (or has failed). */
  private write<T>(apply: () => T): Promise<T> {
    return this.commits.write(apply);
  }

  /** Moves an open attempt and its stage from one state to the next, in one transaction. */
  private advance(
    attemptId: string,
    from: AttemptStatus,
    to: AttemptStatus & StageStatus,
    apply: (a: AttemptRow, now: string) => Record<string, unknown>,
    after?: (a: AttemptRow, now: string) => void
  ): Promise<AttemptRecord> {
    const s = this.stmt;
    return this.write(() => {
      const a = this.openAttempt(attemptId);
      checkStep(a, from, to);
      const now = this.stamp();
      const data = apply(a, now);
      s.setStageStatus.run(to, now, a.run_id, a.stage_id);
      this.event(a.run_id, a.stage_id, `stage.${to}`, stepEvent(a, data), now);
      after?.(a, now);
      return toAttempt(s.attempt.get(a.id) as AttemptRow);
    });
  }

  private openAttempt(attemptId: string): AttemptRow {
    return checkOpen(attemptId, this.stmt.attempt.get(attemptId) as AttemptRow | undefined);
  }

  private event(runId: string, stageId: string | null, type: string, data: Record<string, unknown>, at: string): void {
    this.stmt.insertEvent.run(runId, stageId, type, JSON.stringify(data), at);
  }

  private stamp(): string {
    return this.now().toISOString();
  }
}
