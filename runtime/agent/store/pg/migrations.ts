/**
 * Schema of the PostgreSQL store, as numbered migrations (the same tables and columns as the SQLite
 * store's, in PostgreSQL's types). A database records the versions applied in `schema_migrations`.
 *
 * Several control planes may start at once against one database: each migration runs in its own
 * transaction holding a transaction-scoped advisory lock on the schema, and re-reads the version inside
 * it, so exactly one of them applies each version and the others see it applied. A failed migration
 * rolls back whole (PostgreSQL's DDL is transactional). Never edit a released migration: add the next.
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { newerSchemaMessage, type Migration } from "../migration.ts";
import { transaction } from "./connection.ts";

const OPEN = "('placed', 'running', 'sealing')";

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "runs, stages, attempts, placements, events, artifacts",
    statements: [
      // Documents and inputs stay text: they are kept byte for byte (sealed fields are bound to their bytes).
      `CREATE TABLE runs (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        workflow text NOT NULL,
        format text NOT NULL CHECK (format IN ('native', 'comfyui')),
        priority text NOT NULL CHECK (priority IN ('interactive', 'batch')),
        status text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        idempotency_key text,
        submitted_by text,
        document text NOT NULL,
        inputs text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        UNIQUE (tenant, idempotency_key)
      )`,
      `CREATE TABLE stages (
        run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        stage_id text NOT NULL,
        ordinal integer NOT NULL,
        status text NOT NULL CHECK (status IN ('waiting', 'ready', 'placed', 'running', 'sealing', 'succeeded', 'failed', 'cancelled')),
        needs text NOT NULL,
        resources text NOT NULL,
        spec text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (run_id, stage_id)
      )`,
      `CREATE TABLE stage_needs (
        run_id text NOT NULL,
        stage_id text NOT NULL,
        need_id text NOT NULL,
        PRIMARY KEY (run_id, stage_id, need_id),
        FOREIGN KEY (run_id, stage_id) REFERENCES stages (run_id, stage_id) ON DELETE CASCADE
      )`,
      // gpus is jsonb so that a worker's claim can test containment in its own devices.
      `CREATE TABLE attempts (
        id text PRIMARY KEY,
        run_id text NOT NULL,
        stage_id text NOT NULL,
        number integer NOT NULL,
        status text NOT NULL CHECK (status IN ('placed', 'running', 'sealing', 'succeeded', 'failed', 'interrupted', 'cancelled')),
        gpus jsonb NOT NULL,
        workspace text,
        pid integer,
        placed_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        exit_code integer,
        signal text,
        reason text,
        peak_vram_mib integer,
        simulated boolean NOT NULL DEFAULT false,
        UNIQUE (run_id, stage_id, number),
        FOREIGN KEY (run_id, stage_id) REFERENCES stages (run_id, stage_id) ON DELETE CASCADE
      )`,
      `CREATE TABLE placements (
        attempt_id text PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
        run_id text NOT NULL,
        stage_id text NOT NULL,
        gpus jsonb NOT NULL,
        explanation text NOT NULL,
        at timestamptz NOT NULL
      )`,
      `CREATE TABLE events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        stage_id text,
        type text NOT NULL,
        data text NOT NULL,
        at timestamptz NOT NULL
      )`,
      `CREATE TABLE artifacts (
        run_id text NOT NULL,
        stage_id text NOT NULL,
        name text NOT NULL,
        attempt_id text NOT NULL REFERENCES attempts (id),
        bytes bigint NOT NULL,
        sha256 text NOT NULL,
        path text NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (run_id, stage_id, name),
        FOREIGN KEY (run_id, stage_id) REFERENCES stages (run_id, stage_id) ON DELETE CASCADE
      )`,
    ],
  },
  {
    version: 2,
    name: "indexes for the agent's hot queries",
    statements: [
      // Partial indexes: the scheduler's and recovery's scans touch only live rows, however long the history.
      `CREATE INDEX stages_ready ON stages (run_id, ordinal) WHERE status = 'ready'`,
      `CREATE INDEX stages_live_by_status ON stages (status, run_id) WHERE status IN ('waiting', 'ready', 'placed', 'running', 'sealing')`,
      `CREATE INDEX attempts_open ON attempts (placed_at, id) WHERE status IN ${OPEN}`,
      `CREATE INDEX attempts_by_run ON attempts (run_id, stage_id, number)`,
      `CREATE INDEX events_by_run ON events (run_id, id)`,
      `CREATE INDEX runs_by_tenant ON runs (tenant, created_at)`,
      `CREATE INDEX runs_active ON runs (created_at, id) WHERE status IN ('queued', 'running')`,
      `CREATE INDEX stage_needs_by_need ON stage_needs (run_id, need_id)`,
    ],
  },
  {
    version: 3,
    name: "attempt leases: the worker that holds an attempt, until when",
    statements: [
      // NULL owner: placed and not yet claimed by a worker (or placed by a single-node agent, which holds no leases).
      `ALTER TABLE attempts ADD COLUMN lease_owner text`,
      `ALTER TABLE attempts ADD COLUMN lease_expires_at timestamptz`,
      `CREATE INDEX attempts_claimable ON attempts (placed_at, id) WHERE status = 'placed' AND lease_owner IS NULL`,
      `CREATE INDEX attempts_leased ON attempts (lease_expires_at) WHERE status IN ${OPEN} AND lease_owner IS NOT NULL`,
    ],
  },
  {
    version: 4,
    name: "leader leases: one row per lease name, with its holder and a monotonically increasing epoch",
    statements: [
      // The row is never deleted: releasing clears the holder and keeps the epoch, so the next acquisition
      // continues from it and an epoch is never handed out twice (pg/leader-lease.ts).
      `CREATE TABLE leader_lease (
        name text PRIMARY KEY,
        holder text,
        epoch bigint NOT NULL CHECK (epoch >= 1),
        acquired_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`,
    ],
  },
];

export const PG_LATEST_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;

/** The advisory lock key of a schema's migrations: stable across processes, distinct per schema. */
export function migrationLockKey(schema: string): string {
  return createHash("sha256").update(`gpufabric:migrate:${schema}`).digest().readBigInt64BE(0).toString();
}

/** Applies the migrations the schema lacks, one transaction each; returns the version reached. */
export async function migratePg(pool: pg.Pool, schema: string, migrations: readonly Migration[] = PG_MIGRATIONS): Promise<number> {
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  for (;;) {
    const reached = await transaction(pool, async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1::bigint)", [migrationLockKey(schema)]);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await tx.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
      );
      const { rows } = await tx.query<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${schema}.schema_migrations`);
      const current = rows[0]!.v ?? 0;
      if (current > known) throw new Error(newerSchemaMessage(current, known, "point --database at another database or schema"));
      const next = migrations.find((m) => m.version > current);
      if (next === undefined) return current;
      for (const sql of next.statements) await tx.query(sql);
      await tx.query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`, [next.version, next.name]);
      return undefined;
    });
    if (reached !== undefined) return reached;
  }
}
