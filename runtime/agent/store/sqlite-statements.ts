/**
 * The embedded store's SQL, prepared once per connection. Each statement is small and reads or writes one
 * thing; the store's operations (sqlite-store.ts) compose them inside a group commit's transaction.
 */
import type Database from "better-sqlite3";
import { RUN_COLUMNS } from "./rows.ts";

export type SqliteStatements = ReturnType<typeof prepareStatements>;

export function prepareStatements(db: Database.Database) {
  const statements = {
    runByKey: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE tenant = ? AND idempotency_key = ?`),
    runById: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`),
    runByTenant: db.prepare(`SELECT ${RUN_COLUMNS}, document, inputs FROM runs WHERE tenant = ? AND id = ?`),
    insertRun: db.prepare(
      `INSERT INTO runs (id, tenant, workflow, format, priority, status, idempotency_key, submitted_by, document, inputs, created_at, updated_at)
       VALUES (@id, @tenant, @workflow, @format, @priority, 'queued', @idempotency_key, @submitted_by, @document, @inputs, @now, @now)`
    ),
    setRunStatus: db.prepare("UPDATE runs SET status = ?, updated_at = ? WHERE id = ?"),
    replaceRunFields: db.prepare("UPDATE runs SET document = ?, inputs = ? WHERE tenant = ? AND id = ?"),
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
    // listRuns() builds its query from its filters (run-list.ts).
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
    // GPU use of a tenant's attempts over [@from, @to): each attempt's process time (start to end, or
    // @now while it runs) clipped to the range, times its GPUs, and times their reserved VRAM (per GPU).
    // ISO times in one form compare as strings; julianday() turns the clipped ends into seconds.
    usage: db.prepare(
      `SELECT workflow, stage, COUNT(*) AS attempts, SUM(g * secs) AS gpu_seconds, SUM(g * vram * secs) / 1024.0 AS vram_gib_seconds
       FROM (
         SELECT r.workflow AS workflow, a.stage_id AS stage, json_array_length(a.gpus) AS g,
           COALESCE(json_extract(s.resources, '$.vramMiB'), 0) AS vram,
           (julianday(MIN(COALESCE(a.finished_at, @now), @to)) - julianday(MAX(a.started_at, @from))) * 86400.0 AS secs
         FROM runs r JOIN attempts a ON a.run_id = r.id JOIN stages s ON s.run_id = a.run_id AND s.stage_id = a.stage_id
         WHERE r.tenant = @tenant AND a.started_at IS NOT NULL AND a.started_at < @to AND COALESCE(a.finished_at, @now) > @from
       )
       GROUP BY workflow, stage ORDER BY workflow, stage`
    ),
  };
  // Typed through the package's exported Statement alias: the inferred type names a namespace that
  // better-sqlite3's types do not export, so the declaration (.d.ts) emit could not spell it.
  return statements as { [K in keyof typeof statements]: Database.Statement };
}
