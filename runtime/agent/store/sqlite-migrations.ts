import type Database from "better-sqlite3";
import { newerSchemaMessage, type Migration } from "./migration.ts";

/**
 * Schema of the embedded store, as numbered migrations. A database records the versions applied in
 * `schema_migrations`; opening it applies the missing ones in order, each in its own transaction.
 * Never edit a released migration: add the next one.
 */
export type { Migration };

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "runs, stages, attempts, placements, events, artifacts",
    statements: [
      `CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        workflow TEXT NOT NULL,
        format TEXT NOT NULL CHECK (format IN ('native', 'comfyui')),
        priority TEXT NOT NULL CHECK (priority IN ('interactive', 'batch')),
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        idempotency_key TEXT,
        document TEXT NOT NULL,
        inputs TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (tenant, idempotency_key)
      )`,
      `CREATE TABLE stages (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        stage_id TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('waiting', 'ready', 'placed', 'running', 'sealing', 'succeeded', 'failed', 'cancelled')),
        needs TEXT NOT NULL,
        resources TEXT NOT NULL,
        spec TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (run_id, stage_id)
      )`,
      // One row per dependency edge, so that promoting dependents is one set-based UPDATE.
      `CREATE TABLE stage_needs (
        run_id TEXT NOT NULL,
        stage_id TEXT NOT NULL,
        need_id TEXT NOT NULL,
        PRIMARY KEY (run_id, stage_id, need_id),
        FOREIGN KEY (run_id, stage_id) REFERENCES stages (run_id, stage_id) ON DELETE CASCADE
      )`,
      `CREATE TABLE attempts (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        stage_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('placed', 'running', 'sealing', 'succeeded', 'failed', 'interrupted', 'cancelled')),
        gpus TEXT NOT NULL,
        workspace TEXT,
        pid INTEGER,
        placed_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        exit_code INTEGER,
        signal TEXT,
        reason TEXT,
        peak_vram_mib INTEGER,
        simulated INTEGER NOT NULL DEFAULT 0,
        UNIQUE (run_id, stage_id, number),
        FOREIGN KEY (run_id, stage_id) REFERENCES stages (run_id, stage_id) ON DELETE CASCADE
      )`,
      `CREATE TABLE placements (
        attempt_id TEXT PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
        run_id TEXT NOT NULL,
        stage_id TEXT NOT NULL,
        gpus TEXT NOT NULL,
        explanation TEXT NOT NULL,
        at TEXT NOT NULL
      )`,
      `CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        stage_id TEXT,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        at TEXT NOT NULL
      )`,
      `CREATE TABLE artifacts (
        run_id TEXT NOT NULL,
        stage_id TEXT NOT NULL,
        name TEXT NOT NULL,
        attempt_id TEXT NOT NULL REFERENCES attempts (id),
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        path TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, stage_id, name),
        FOREIGN KEY (run_id, stage_id) REFERENCES stages (run_id, stage_id) ON DELETE CASCADE
      )`,
    ],
  },
  {
    version: 2,
    name: "indexes for the agent's hot queries",
    statements: [
      // readyStages() and queueDepth() scan by stage status; recover() by attempt status.
      `CREATE INDEX stages_by_status ON stages (status, run_id)`,
      `CREATE INDEX attempts_by_status ON attempts (status)`,
      // eventsSince() reads one run's events in id order.
      `CREATE INDEX events_by_run ON events (run_id, id)`,
      // listRuns() pages a tenant's runs newest first.
      `CREATE INDEX runs_by_tenant ON runs (tenant, created_at)`,
      `CREATE INDEX stage_needs_by_need ON stage_needs (run_id, need_id)`,
    ],
  },
  {
    version: 3,
    name: "the subject that submitted each run",
    statements: [
      // NULL for runs submitted before the column existed: only a tenant admin may cancel those.
      `ALTER TABLE runs ADD COLUMN submitted_by TEXT`,
    ],
  },
];

export const LATEST_SCHEMA_VERSION = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;

/** Applies the migrations a database lacks; refuses a database written by a newer agent. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = SQLITE_MIGRATIONS): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
  const applied = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
  const current = applied.v ?? 0;
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  if (current > known) throw new Error(newerSchemaMessage(current, known));
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      for (const sql of m.statements) db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, new Date().toISOString());
    }).immediate();
  }
  return (db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null }).v ?? 0;
}

