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
 * Group commit: writes queued while the previous group is being synced (or, when idle, in the same turn
 * of the event loop) are applied in order in one transaction, each under its own savepoint so one failing
 * write leaves the others intact, and every promise settles only after that transaction has committed
 * (and, at `full`, been synced). One commit and one fsync then cover many writes, and the group grows with
 * the load: the slower the disk, the more writes each sync covers.
 *
 * A failed sync leaves unknown what reached the disk, so the store then refuses every write (fail closed)
 * until it is reopened.
 */
import { closeSync, fdatasync, fstatSync, fsyncSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { ValidationError } from "../../config/errors.ts";
import type { PriorityClass } from "../../config/schema.ts";
import type { Stage, StageResources, WorkflowFormat } from "../../graph/model.ts";
import { timeOrderedUuid } from "./ids.ts";
import { SQLITE_MIGRATIONS, type Migration } from "./sqlite-migrations.ts";
import {
  TransitionError,
  type ArtifactInput,
  type ArtifactRecord,
  type AttemptRecord,
  type AttemptStatus,
  type CancelResult,
  type EventRecord,
  type FailInput,
  type FinishInput,
  type NewRun,
  type PlacementInput,
  type QueueCounts,
  type QueueDepth,
  type ReadyStage,
  type RecoveryReport,
  type RunDetail,
  type RunRecord,
  type RunStatus,
  type StageRecord,
  type StageStatus,
  type Store,
} from "./types.ts";
import { validateNewRun, validateTransition } from "./validate-run.ts";

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

/** The WAL's sync failed: what reached the disk is unknown, so this store takes no more writes. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

const fdatasyncAsync = (fd: number) => new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));

interface PendingWrite {
  readonly apply: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** A committed write waiting for the sync that makes it durable. */
interface Committed {
  readonly op: PendingWrite;
  readonly outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
}

interface RunRow {
  id: string;
  tenant: string;
  workflow: string;
  format: string;
  priority: string;
  status: string;
  idempotency_key: string | null;
  submitted_by: string | null;
  document: string;
  inputs: string;
  created_at: string;
  updated_at: string;
}
interface StageRow {
  run_id: string;
  stage_id: string;
  status: string;
  needs: string;
  resources: string;
  spec: string;
  attempts: number;
  updated_at: string;
}
interface AttemptRow {
  id: string;
  run_id: string;
  stage_id: string;
  number: number;
  status: string;
  gpus: string;
  workspace: string | null;
  pid: number | null;
  placed_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  signal: string | null;
  reason: string | null;
  peak_vram_mib: number | null;
  simulated: number;
}
interface ArtifactRow {
  run_id: string;
  stage_id: string;
  name: string;
  attempt_id: string;
  bytes: number;
  sha256: string;
  path: string;
  created_at: string;
}
interface EventRow {
  id: number;
  run_id: string;
  stage_id: string | null;
  type: string;
  data: string;
  at: string;
}

const RUN_COLUMNS = "id, tenant, workflow, format, priority, status, idempotency_key, submitted_by, created_at, updated_at";

/** Opens (creating if needed) the database at `file` and brings its schema up to date. */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): SqliteStore {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  return new SqliteStore(new Database(file), options, file === ":memory:" ? undefined : file);
}

/** Applies the migrations a database lacks; refuses a database written by a newer agent. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = SQLITE_MIGRATIONS): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
  const applied = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
  const current = applied.v ?? 0;
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  if (current > known) {
    throw new Error(
      `the store's schema is at version ${current} but this agent knows versions up to ${known}: run a newer agent, or point --data-dir at another directory`
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      for (const sql of m.statements) db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, new Date().toISOString());
    }).immediate();
  }
  return (db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;
}

export class SqliteStore implements Store {
  readonly schemaVersion: number;
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly stmt: ReturnType<SqliteStore["prepare"]>;
  private readonly maxBatch: number;
  private readonly pending: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly inSavepoint: (apply: () => unknown) => unknown;
  /** The WAL file, synced after each group commit (durability `full` on a file database); undefined: no per-commit sync. */
  private readonly walPath: string | undefined;
  private walFd: { fd: number; ino: number } | undefined;
  private readonly syncWal: (fd: number) => Promise<void>;
  /** Committed writes the next sync covers. */
  private unsynced: Committed[] = [];
  private syncing: Promise<void> | undefined;
  private failure: StoreUnavailableError | undefined;

  /** `file`: the database file, whose WAL is synced at durability `full` (without it, SQLite's synchronous=FULL is used). */
  constructor(db: Database.Database, options: SqliteStoreOptions = {}, file?: string) {
    this.db = db;
    this.now = options.now ?? (() => new Date());
    this.maxBatch = options.maxBatch ?? 512;
    this.syncWal = options.syncWal ?? fdatasyncAsync;
    // Called inside the batch's transaction, better-sqlite3 runs this as a SAVEPOINT.
    this.inSavepoint = db.transaction((apply: () => unknown) => apply());
    const full = options.durability !== "normal";
    const wal = String(db.pragma("journal_mode = WAL", { simple: true })) === "wal";
    this.walPath = full && wal && file !== undefined && options.syncInCommit !== true ? `${file}-wal` : undefined;
    // At `full` the store syncs the WAL itself after each group commit (see above); SQLite syncs it before checkpoints.
    db.pragma(`synchronous = ${full && this.walPath === undefined ? "FULL" : "NORMAL"}`);
    db.pragma("foreign_keys = ON");
    // Replaced values (rewrapped fields) are zeroed, not left in free pages.
    db.pragma("secure_delete = ON");
    // Another process (a CLI reading the store) may hold the write lock for a moment.
    db.pragma("busy_timeout = 5000");
    this.schemaVersion = migrate(db, options.migrations);
    this.stmt = this.prepare();
  }

  /** The pragmas in effect, and whether each group commit is synced to disk before its writes settle. */
  settings(): { journalMode: string; synchronous: number; syncEachCommit: boolean } {
    const synchronous = Number(this.db.pragma("synchronous", { simple: true }));
    return {
      journalMode: String(this.db.pragma("journal_mode", { simple: true })),
      synchronous,
      syncEachCommit: this.walPath !== undefined || synchronous >= 2,
    };
  }

  private prepare() {
    const db = this.db;
    return {
      runByKey: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE tenant = ? AND idempotency_key = ?`),
      runById: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`),
      runByTenant: db.prepare(`SELECT ${RUN_COLUMNS}, document, inputs FROM runs WHERE tenant = ? AND id = ?`),
      insertRun: db.prepare(
        `INSERT INTO runs (id, tenant, workflow, format, priority, status, idempotency_key, submitted_by, document, inputs, created_at, updated_at)
         VALUES (@id, @tenant, @workflow, @format, @priority, 'queued', @idempotency_key, @submitted_by, @document, @inputs, @now, @now)`
      ),
      setRunStatus: db.prepare("UPDATE runs SET status = ?, updated_at = ? WHERE id = ?"),
      insertStage: db.prepare(
        `INSERT INTO stages (run_id, stage_id, ordinal, status, needs, resources, spec, attempts, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)`
      ),
      insertNeed: db.prepare("INSERT OR IGNORE INTO stage_needs (run_id, stage_id, need_id) VALUES (?, ?, ?)"),
      stage: db.prepare("SELECT * FROM stages WHERE run_id = ? AND stage_id = ?"),
      stagesOfRun: db.prepare("SELECT * FROM stages WHERE run_id = ? ORDER BY ordinal"),
      setStageStatus: db.prepare("UPDATE stages SET status = ?, updated_at = ? WHERE run_id = ? AND stage_id = ?"),
      bumpStageAttempts: db.prepare("UPDATE stages SET status = 'placed', attempts = attempts + 1, updated_at = ? WHERE run_id = ? AND stage_id = ?"),
      // Dependents of a stage that just succeeded, whose needs have now all succeeded.
      readyDependents: db.prepare(
        `SELECT s.stage_id FROM stages s
         JOIN stage_needs e ON e.run_id = s.run_id AND e.stage_id = s.stage_id
         WHERE s.run_id = @run AND e.need_id = @stage AND s.status = 'waiting'
           AND NOT EXISTS (
             SELECT 1 FROM stage_needs n JOIN stages d ON d.run_id = n.run_id AND d.stage_id = n.need_id
             WHERE n.run_id = s.run_id AND n.stage_id = s.stage_id AND d.status <> 'succeeded')`
      ),
      unfinishedStages: db.prepare("SELECT COUNT(*) AS n FROM stages WHERE run_id = ? AND status <> 'succeeded'"),
      cancelPendingStages: db.prepare(
        "UPDATE stages SET status = 'cancelled', updated_at = ? WHERE run_id = ? AND status IN ('waiting', 'ready', 'placed', 'running', 'sealing')"
      ),
      cancelNotStartedStages: db.prepare("UPDATE stages SET status = 'cancelled', updated_at = ? WHERE run_id = ? AND status IN ('waiting', 'ready')"),
      readyStages: db.prepare(
        `SELECT s.*, r.tenant, r.priority, r.created_at AS run_created_at FROM stages s JOIN runs r ON r.id = s.run_id
         WHERE s.status = 'ready' AND r.status IN ('queued', 'running')
         ORDER BY r.created_at, r.id, s.ordinal LIMIT ?`
      ),
      activeRuns: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running') ORDER BY created_at, id`),
      listRuns: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE tenant = ? ORDER BY created_at DESC, id DESC LIMIT ?`),
      listRunsByStatus: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE tenant = ? AND status = ? ORDER BY created_at DESC, id DESC LIMIT ?`),
      insertAttempt: db.prepare(`INSERT INTO attempts (id, run_id, stage_id, number, status, gpus, placed_at) VALUES (?, ?, ?, ?, 'placed', ?, ?)`),
      insertPlacement: db.prepare("INSERT INTO placements (attempt_id, run_id, stage_id, gpus, explanation, at) VALUES (?, ?, ?, ?, ?, ?)"),
      attempt: db.prepare("SELECT * FROM attempts WHERE id = ?"),
      attemptsOfRun: db.prepare("SELECT * FROM attempts WHERE run_id = ? ORDER BY stage_id, number"),
      openAttempts: db.prepare("SELECT * FROM attempts WHERE status IN ('placed', 'running', 'sealing') ORDER BY placed_at, id"),
      openAttemptsOfRun: db.prepare("SELECT * FROM attempts WHERE run_id = ? AND status IN ('placed', 'running', 'sealing')"),
      startAttempt: db.prepare("UPDATE attempts SET status = 'running', pid = ?, workspace = ?, started_at = ? WHERE id = ?"),
      sealAttempt: db.prepare("UPDATE attempts SET status = 'sealing', exit_code = ?, signal = ?, peak_vram_mib = ?, simulated = ? WHERE id = ?"),
      closeAttempt: db.prepare(
        `UPDATE attempts SET status = @status, finished_at = @now, reason = @reason,
           exit_code = COALESCE(@exit_code, exit_code), signal = COALESCE(@signal, signal),
           peak_vram_mib = COALESCE(@peak, peak_vram_mib), simulated = MAX(simulated, @simulated)
         WHERE id = @id`
      ),
      insertArtifact: db.prepare("INSERT INTO artifacts (run_id, stage_id, name, attempt_id, bytes, sha256, path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
      artifactsOfRun: db.prepare("SELECT * FROM artifacts WHERE run_id = ? ORDER BY stage_id, name"),
      insertEvent: db.prepare("INSERT INTO events (run_id, stage_id, type, data, at) VALUES (?, ?, ?, ?, ?)"),
      eventsSince: db.prepare("SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?"),
      stageCounts: db.prepare(
        `SELECT r.tenant AS tenant, s.status AS status, COUNT(*) AS n FROM stages s JOIN runs r ON r.id = s.run_id
         WHERE s.status IN ('waiting', 'ready', 'placed', 'running', 'sealing') GROUP BY r.tenant, s.status`
      ),
      activeRunCounts: db.prepare("SELECT tenant, COUNT(*) AS n FROM runs WHERE status IN ('queued', 'running') GROUP BY tenant"),
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
        const status: StageStatus = stage.needs.length === 0 ? "ready" : "waiting";
        s.insertStage.run(id, stage.id, ordinal, status, JSON.stringify(stage.needs), JSON.stringify(stage.resources), JSON.stringify(stage), now);
        for (const need of stage.needs) s.insertNeed.run(id, stage.id, need);
      });
      this.event(id, null, "run.accepted", { workflow: input.workflow, stages: input.stages.length, priority: input.priority }, now);
      const run: RunRecord = {
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
      return { run, created: true };
    });
  }

  async getRun(tenant: string, runId: string): Promise<RunDetail | undefined> {
    const s = this.stmt;
    return this.db.transaction(() => {
      const row = s.runByTenant.get(tenant, runId) as RunRow | undefined;
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

  async listRuns(tenant: string, options: { status?: RunStatus; limit?: number } = {}): Promise<RunRecord[]> {
    const limit = clampLimit(options.limit, 100, 10_000);
    const rows = options.status
      ? (this.stmt.listRunsByStatus.all(tenant, options.status, limit) as RunRow[])
      : (this.stmt.listRuns.all(tenant, limit) as RunRow[]);
    return rows.map(toRun);
  }

  async replaceRunFields(tenant: string, runId: string, fields: { document: unknown; inputs: Readonly<Record<string, unknown>> }): Promise<boolean> {
    const document = JSON.stringify(fields.document ?? null);
    const inputs = JSON.stringify(fields.inputs);
    return this.write(() => this.db.prepare("UPDATE runs SET document = ?, inputs = ? WHERE tenant = ? AND id = ?").run(document, inputs, tenant, runId).changes === 1);
  }

  async compact(): Promise<void> {
    await this.drain();
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
    const rows = this.stmt.readyStages.all(clampLimit(limit, 10_000, 1_000_000)) as Array<
      StageRow & { tenant: string; priority: string; run_created_at: string }
    >;
    return rows.map((row) => ({
      runId: row.run_id,
      tenant: row.tenant,
      priority: row.priority as PriorityClass,
      runCreatedAt: row.run_created_at,
      stage: toStage(row),
    }));
  }

  async markPlaced(placement: PlacementInput): Promise<AttemptRecord> {
    validateTransition("placement", { gpus: placement.gpus });
    const s = this.stmt;
    return this.write(() => {
      const run = s.runById.get(placement.runId) as RunRow | undefined;
      if (!run) throw new TransitionError(`run '${placement.runId}' does not exist`, null);
      if (run.status !== "queued" && run.status !== "running") {
        throw new TransitionError(`run '${run.id}' is ${run.status}: its stages can no longer be placed`, run.status);
      }
      const stage = s.stage.get(placement.runId, placement.stageId) as StageRow | undefined;
      if (!stage) throw new TransitionError(`run '${run.id}' has no stage '${placement.stageId}'`, null);
      if (stage.status !== "ready") {
        throw new TransitionError(`stage '${stage.stage_id}' of run '${run.id}' is ${stage.status}, not ready: it cannot be placed`, stage.status);
      }
      const now = this.stamp();
      const id = timeOrderedUuid();
      const number = stage.attempts + 1;
      const gpus = JSON.stringify(placement.gpus);
      s.bumpStageAttempts.run(now, run.id, stage.stage_id);
      s.insertAttempt.run(id, run.id, stage.stage_id, number, gpus, now);
      s.insertPlacement.run(id, run.id, stage.stage_id, gpus, JSON.stringify(placement.explanation ?? null), now);
      if (run.status === "queued") {
        s.setRunStatus.run("running", now, run.id);
        this.event(run.id, null, "run.running", {}, now);
      }
      this.event(
        run.id,
        stage.stage_id,
        "stage.placed",
        { attempt: number, attemptId: id, gpus: placement.gpus, explanation: placement.explanation ?? null },
        now
      );
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
            throw new ValidationError("artifacts", [
              { field: `artifacts[${i}].name`, message: `duplicate name '${art.name}': each output of a stage has its own name` },
            ]);
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
      const data = { attempt: a.number, attemptId: a.id, reason: failure.reason, exitCode: failure.exitCode ?? null, signal: failure.signal ?? null };
      if (failure.retry) {
        s.setStageStatus.run("ready", now, a.run_id, a.stage_id);
        this.event(a.run_id, a.stage_id, "stage.retrying", data, now);
      } else {
        s.setStageStatus.run("failed", now, a.run_id, a.stage_id);
        this.event(a.run_id, a.stage_id, "stage.failed", data, now);
        const run = s.runById.get(a.run_id) as RunRow;
        if (run.status === "queued" || run.status === "running") {
          // Stages not started can never run now; stages already running finish and are recorded.
          s.cancelNotStartedStages.run(now, a.run_id);
          s.setRunStatus.run("failed", now, a.run_id);
          this.event(a.run_id, null, "run.failed", { stage: a.stage_id, reason: failure.reason }, now);
        }
      }
      return toAttempt(s.attempt.get(a.id) as AttemptRow);
    });
  }

  async cancelRun(tenant: string, runId: string): Promise<CancelResult | undefined> {
    const s = this.stmt;
    return this.write(() => {
      const row = s.runByTenant.get(tenant, runId) as RunRow | undefined;
      if (!row) return undefined;
      if (row.status !== "queued" && row.status !== "running") return { run: toRun(row), cancelled: false, stoppedAttempts: [] };
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
        s.closeAttempt.run(closeParams(a.id, "interrupted", "interrupted: the agent stopped while the attempt was open", {}, now));
        const stage = s.stage.get(a.run_id, a.stage_id) as StageRow;
        if (stage.status === "placed" || stage.status === "running" || stage.status === "sealing") {
          s.setStageStatus.run("ready", now, a.run_id, a.stage_id);
          requeued++;
        }
        this.event(a.run_id, a.stage_id, "stage.interrupted", { attempt: a.number, attemptId: a.id, was: a.status }, now);
      }
      return { interrupted: open.map((a) => toAttempt(s.attempt.get(a.id) as AttemptRow)), requeuedStages: requeued };
    });
  }

  async eventsSince(tenant: string, runId: string, afterEventId: number, limit?: number): Promise<EventRecord[] | undefined> {
    if (!Number.isInteger(afterEventId) || afterEventId < 0) {
      throw new RangeError(`afterEventId must be a whole number of 0 or more (got ${afterEventId}): pass the id of the last event seen, or 0`);
    }
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
    return this.db.transaction(() => {
      const byTenant: Record<string, MutableCounts & { activeRuns: number }> = {};
      const total = emptyCounts();
      const tenantEntry = (t: string) => (byTenant[t] ??= { ...emptyCounts(), activeRuns: 0 });
      for (const row of this.stmt.stageCounts.all() as Array<{ tenant: string; status: keyof QueueCounts; n: number }>) {
        tenantEntry(row.tenant)[row.status] += row.n;
        total[row.status] += row.n;
      }
      let activeRuns = 0;
      for (const row of this.stmt.activeRunCounts.all() as Array<{ tenant: string; n: number }>) {
        tenantEntry(row.tenant).activeRuns = row.n;
        activeRuns += row.n;
      }
      return { activeRuns, stages: total, byTenant };
    })();
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    try {
      await this.drain();
    } finally {
      if (this.walFd) closeSync(this.walFd.fd);
      this.walFd = undefined;
      this.db.close();
    }
  }

  /** Commits and syncs every queued write now, settling them all. */
  private async drain(): Promise<void> {
    while (this.syncing) await this.syncing.catch(() => undefined);
    while (this.pending.length > 0) this.commit(this.pending.splice(0, this.maxBatch));
    if (this.unsynced.length > 0) await this.sync();
  }

  /** Queues a write for the next group commit; settles once it is committed and durable (or has failed). */
  private write<T>(apply: () => T): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ apply, resolve: resolve as (value: unknown) => void, reject });
      this.scheduleFlush();
    });
  }

  /** While a sync runs, writes wait and join the group committed when it ends. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.syncing) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.syncing || this.pending.length === 0) return;
    this.commit(this.pending.splice(0, this.maxBatch));
    if (this.walPath !== undefined) void this.sync();
    else if (this.pending.length > 0) this.scheduleFlush();
  }

  /** Applies a group of writes in one transaction; settles them now (no per-commit sync) or queues them for the sync. */
  private commit(batch: PendingWrite[]): void {
    if (this.failure) {
      for (const op of batch) op.reject(this.failure);
      return;
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.db
        .transaction(() => {
          // A write alone in its group needs no savepoint: if it fails, the transaction rolls back and commits nothing.
          if (batch.length === 1) {
            outcomes.push({ ok: true, value: batch[0]!.apply() });
            return;
          }
          for (const op of batch) {
            try {
              outcomes.push({ ok: true, value: this.inSavepoint(op.apply) });
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        })
        .immediate();
    } catch (error) {
      // A lone write failed (rolled back), or the commit itself failed (disk full, I/O error): nothing of the batch is durable.
      for (const op of batch) op.reject(error);
      return;
    }
    if (this.walPath === undefined) {
      batch.forEach((op, i) => settle(op, outcomes[i]!));
      return;
    }
    batch.forEach((op, i) => this.unsynced.push({ op, outcome: outcomes[i]! }));
  }

  /** Syncs the WAL, then settles the writes committed before the sync began; then commits what queued meanwhile. */
  private sync(): Promise<void> {
    const covered = this.unsynced;
    this.unsynced = [];
    const run = (async () => {
      try {
        await this.syncWal(this.openWal());
      } catch (err) {
        this.failure ??= new StoreUnavailableError(
          `the store could not sync its write-ahead log (${(err as Error).message}): what reached the disk is unknown, so it takes no more writes; restart the agent`,
          { cause: err }
        );
        for (const c of covered) c.op.reject(this.failure);
        for (const op of this.pending.splice(0)) op.reject(this.failure);
        return;
      }
      for (const c of covered) settle(c.op, c.outcome);
    })();
    this.syncing = run.finally(() => {
      this.syncing = undefined;
      if (this.pending.length > 0) this.scheduleFlush();
    });
    return this.syncing;
  }

  /** The WAL's descriptor, reopened if SQLite replaced the file; a new file's directory entry is synced once. */
  private openWal(): number {
    const path = this.walPath!;
    const ino = statSync(path).ino;
    if (this.walFd?.ino === ino) return this.walFd.fd;
    if (this.walFd) closeSync(this.walFd.fd);
    this.walFd = undefined;
    const fd = openSync(path, "r");
    this.walFd = { fd, ino: fstatSync(fd).ino };
    const dir = openSync(dirname(path), "r");
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    return fd;
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
      if (a.status !== from) {
        throw new TransitionError(`attempt ${a.number} of stage '${a.stage_id}' is ${a.status}, not ${from}: it cannot become ${to}`, a.status);
      }
      const now = this.stamp();
      const data = apply(a, now);
      s.setStageStatus.run(to, now, a.run_id, a.stage_id);
      this.event(a.run_id, a.stage_id, `stage.${to}`, { attempt: a.number, attemptId: a.id, ...data }, now);
      after?.(a, now);
      return toAttempt(s.attempt.get(a.id) as AttemptRow);
    });
  }

  private openAttempt(attemptId: string): AttemptRow {
    const a = this.stmt.attempt.get(attemptId) as AttemptRow | undefined;
    if (!a) throw new TransitionError(`attempt '${attemptId}' does not exist`, null);
    if (a.status !== "placed" && a.status !== "running" && a.status !== "sealing") {
      throw new TransitionError(`attempt ${a.number} of stage '${a.stage_id}' is already closed (${a.status})`, a.status);
    }
    return a;
  }

  private event(runId: string, stageId: string | null, type: string, data: Record<string, unknown>, at: string): void {
    this.stmt.insertEvent.run(runId, stageId, type, JSON.stringify(data), at);
  }

  private stamp(): string {
    return this.now().toISOString();
  }
}

function settle(op: PendingWrite, outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): void {
  if (outcome.ok) op.resolve(outcome.value);
  else op.reject(outcome.error);
}

function closeParams(id: string, status: AttemptStatus, reason: string, f: FinishInput, now: string) {
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

function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a whole number of 1 or more (got ${limit})`);
  return Math.min(limit, max);
}

type MutableCounts = { -readonly [K in keyof QueueCounts]: number };

function emptyCounts(): MutableCounts {
  return { waiting: 0, ready: 0, placed: 0, running: 0, sealing: 0 };
}

function toRun(r: RunRow): RunRecord {
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

function toStage(r: StageRow): StageRecord {
  return {
    runId: r.run_id,
    stageId: r.stage_id,
    status: r.status as StageStatus,
    needs: JSON.parse(r.needs) as string[],
    resources: JSON.parse(r.resources) as StageResources,
    spec: JSON.parse(r.spec) as Stage,
    attempts: r.attempts,
    updatedAt: r.updated_at,
  };
}

function toAttempt(r: AttemptRow): AttemptRecord {
  return {
    id: r.id,
    runId: r.run_id,
    stageId: r.stage_id,
    number: r.number,
    status: r.status as AttemptStatus,
    gpus: JSON.parse(r.gpus) as string[],
    workspace: r.workspace,
    pid: r.pid,
    placedAt: r.placed_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
    signal: r.signal,
    reason: r.reason,
    peakVramMiB: r.peak_vram_mib,
    simulated: r.simulated === 1,
  };
}

function toArtifact(r: ArtifactRow): ArtifactRecord {
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

function toEvent(r: EventRow): EventRecord {
  return { id: r.id, runId: r.run_id, stageId: r.stage_id, type: r.type, data: JSON.parse(r.data) as Record<string, unknown>, at: r.at };
}
