/**
 * The PostgreSQL store: one database shared by several control planes (cluster mode). It implements the
 * same Store interface, and passes the same contract suite, as the embedded SQLite store.
 *
 * - Durability: every write is one transaction, committed with synchronous_commit=on: a call settles only
 *   once its commit is flushed on the server. PostgreSQL groups concurrent commits into one WAL flush
 *   itself, so the store needs no group commit of its own; concurrent calls run on the pool's connections.
 * - Concurrency: writes lock the run's row first (pg/sql.ts), so writes to one run are serialized and
 *   writes to different runs proceed in parallel; a deadlock or serialization failure is retried.
 * - Schema: versioned migrations (pg/migrations.ts), applied at open under an advisory lock.
 * - Cluster extras beyond the Store interface: attempt leases with heartbeats and expiry, claims with
 *   FOR UPDATE SKIP LOCKED (pg/leases.ts), and LISTEN/NOTIFY wake-ups (pg/wakeups.ts).
 *
 * The operations live one concern per file under pg/, in the manner of graphile-worker; this class
 * validates the input (with the rules the SQLite store uses), opens the transaction, and calls them.
 */
import type pg from "pg";
import { checkAfterEventId } from "./rows.ts";
import { INTERRUPTED_REASON } from "./transitions.ts";
import type {
  ArtifactInput,
  ArtifactRecord,
  AttemptRecord,
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
  RunStatus,
  StageRecord,
  Store,
  UsageRow,
} from "./types.ts";
import { validateNewRun, validateTransition } from "./validate-run.ts";
import { StoreUnavailableError } from "./errors.ts";
import type { Migration } from "./migration.ts";
import * as attempts from "./pg/attempts.ts";
import { createPool, named, once, SCHEMA_NAME, transaction, type Tx } from "./pg/connection.ts";
import { createRun, createRuns } from "./pg/create-run.ts";
import { checkLease, claimPlaced, heartbeat, interruptOpen, type ClaimOptions, type HeartbeatResult } from "./pg/leases.ts";
import { migratePg } from "./pg/migrations.ts";
import * as read from "./pg/read.ts";
import { usage } from "./pg/usage.ts";
import type { WorkflowRunTimes } from "./types.ts";
import { stageTimes } from "./pg/stage-times.ts";
import type { OpContext, Wake } from "./pg/sql.ts";
import { listen, type Wakeups } from "./pg/wakeups.ts";
import { assertEpoch, LeaderLease } from "./pg/leader-lease.ts";

export interface PgStoreOptions {
  /** The schema holding the store's tables (default `public`); created when missing. */
  readonly schema?: string;
  /** Connections held at most (default 10). */
  readonly maxConnections?: number;
  /** Clock of the records' timestamps, for tests (lease expiry always uses the database's clock). */
  readonly now?: () => Date;
  /** Migrations to apply (all by default); tests pass a prefix to build an older schema. */
  readonly migrations?: readonly Migration[];
}

/** Connects, brings the schema up to date, and returns the store. */
export async function openPgStore(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
  const schema = options.schema ?? "public";
  if (!SCHEMA_NAME.test(schema)) {
    throw new RangeError(`schema must be a lowercase PostgreSQL identifier (letters, digits, underscores; at most 63), got '${schema}'`);
  }
  const pool = createPool(url, { schema, ...(options.maxConnections !== undefined && { maxConnections: options.maxConnections }) });
  try {
    const version = await migratePg(pool, schema, options.migrations);
    return new PgStore(pool, url, schema, version, options.now ?? (() => new Date()));
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

/**
 * Submissions written together at most, and group commits in flight at once: one, like a write-ahead log's
 * group commit; the submissions that arrive meanwhile make the next, larger batch (fewer statements).
 */
const SUBMIT_BATCH = 128;
const MAX_SUBMIT_BATCHES_IN_FLIGHT = 1;

export class PgStore implements Store {
  private closed = false;
  /** Submissions waiting for the next group commit, and the batches being written. */
  private readonly submissions: Array<{ input: NewRun; resolve: (r: { run: RunRecord; created: boolean }) => void; reject: (err: unknown) => void }> = [];
  private submitting = 0;
  /** The leader tenure the scheduling writes are fenced by (fenceBy), if any. */
  private fence: { readonly lease: string; readonly epoch: number } | undefined;
  /** How long a scheduling write waits for an unreachable database before it gives up (retryUnavailable). */
  private unavailableRetryMs = 0;
  private readonly ctx: OpContext;
  private readonly listeners = new Set<Wakeups>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    readonly schema: string,
    readonly schemaVersion: number,
    now: () => Date
  ) {
    this.ctx = { schema, stamp: () => now().toISOString() };
  }

  /** The durability settings of the store's sessions, as the server reports them. */
  async settings(): Promise<{ synchronousCommit: string; fsync: string; serverVersion: string }> {
    const { rows } = await this.single((tx) =>
      tx.query<{ sc: string; fsync: string; v: string }>(
        "SELECT current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fsync, current_setting('server_version') AS v"
      )
    );
    return { synchronousCommit: rows[0]!.sc, fsync: rows[0]!.fsync, serverVersion: rows[0]!.v };
  }

  async createRun(input: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    validateNewRun(input);
    this.assertOpen();
    // Group commit: submissions that arrive while others are being written go together in one statement.
    return new Promise((resolve, reject) => {
      this.submissions.push({ input, resolve, reject });
      if (this.submitting < MAX_SUBMIT_BATCHES_IN_FLIGHT) void this.submitBatch();
    });
  }

  /** Writes the waiting submissions, up to SUBMIT_BATCH at once, until none is left. */
  private async submitBatch(): Promise<void> {
    this.submitting++;
    try {
      for (let batch = this.submissions.splice(0, SUBMIT_BATCH); batch.length > 0; batch = this.submissions.splice(0, SUBMIT_BATCH)) {
        try {
          // One statement (pg/create-run.ts): its own transaction.
          const results = batch.length === 1 ? [await this.single((tx) => createRun(tx, this.ctx, batch[0]!.input))] : await this.single((tx) => createRuns(tx, this.ctx, batch.map((b) => b.input)));
          batch.forEach((b, i) => b.resolve(results[i]!));
        } catch (err) {
          if (batch.length === 1 || err instanceof StoreUnavailableError) {
            for (const b of batch) b.reject(err);
            continue;
          }
          // One bad submission must not fail the others: each is written on its own.
          await Promise.all(batch.map((b) => this.single((tx) => createRun(tx, this.ctx, b.input)).then(b.resolve, b.reject)));
        }
      }
    } finally {
      this.submitting--;
    }
  }

  async getRun(tenant: string, runId: string): Promise<RunDetail | undefined> {
    return this.read((tx) => read.getRun(tx, tenant, runId));
  }

  async listRuns(tenant: string, options: RunListOptions = {}): Promise<ListedRun[]> {
    return this.single((tx) => read.listRuns(tx, tenant, options));
  }

  async replaceRunFields(tenant: string, runId: string, fields: { document: unknown; inputs: Readonly<Record<string, unknown>> }): Promise<boolean> {
    const document = JSON.stringify(fields.document ?? null);
    const inputs = JSON.stringify(fields.inputs);
    return this.write(async (tx) => {
      const locked = await tx.query("SELECT 1 FROM runs WHERE tenant = $1 AND id = $2 FOR UPDATE", [tenant, runId]);
      if (locked.rowCount === 0) return false;
      await tx.query("UPDATE runs SET document = $3, inputs = $4 WHERE tenant = $1 AND id = $2", [tenant, runId, document, inputs]);
      return true;
    });
  }

  /**
   * Vacuums the runs table, so the row versions holding replaced documents are reclaimed. Copies in the
   * server's WAL archive and backups are the database operator's to expire.
   */
  async compact(): Promise<void> {
    await this.single((tx) => tx.query("VACUUM runs"));
  }

  async activeRuns(): Promise<Array<{ run: RunRecord; stages: StageRecord[] }>> {
    return this.read((tx) => read.activeRuns(tx));
  }

  async readyStages(limit?: number): Promise<ReadyStage[]> {
    return this.single((tx) => read.readyStages(tx, limit));
  }

  async markPlaced(placement: PlacementInput): Promise<AttemptRecord> {
    validateTransition("placement", { gpus: placement.gpus });
    return this.schedulingWrite((tx) => attempts.markPlaced(tx, this.ctx, placement));
  }

  async markRunning(attemptId: string, started: { pid: number | null; workspace: string | null }): Promise<AttemptRecord> {
    validateTransition("start", { pid: started.pid });
    return this.schedulingWrite((tx) => attempts.markRunning(tx, this.ctx, attemptId, started));
  }

  async markSealing(attemptId: string, finish: FinishInput = {}): Promise<AttemptRecord> {
    validateTransition("finish", finish);
    return this.schedulingWrite((tx) => attempts.markSealing(tx, this.ctx, attemptId, finish));
  }

  async markSucceeded(attemptId: string, result: FinishInput & { artifacts: readonly ArtifactInput[] }): Promise<AttemptRecord> {
    validateTransition("result", result);
    return this.schedulingWrite((tx) => attempts.markSucceeded(tx, this.ctx, attemptId, result));
  }

  async markFailed(attemptId: string, failure: FailInput): Promise<AttemptRecord> {
    validateTransition("failure", failure);
    return this.schedulingWrite((tx) => attempts.markFailed(tx, this.ctx, attemptId, failure));
  }

  async markInterrupted(attemptId: string, reason: string): Promise<AttemptRecord> {
    return this.schedulingWrite((tx) => attempts.markInterrupted(tx, this.ctx, attemptId, reason.slice(0, 2000)));
  }

  /**
   * Fences the scheduling writes (placements, attempt transitions, recovery) by a leader's tenure: each
   * runs in a transaction that first checks `epoch` still leads lease `lease` (assertEpoch), so a deposed
   * leader's write is refused with a StaleLeaderError and changes nothing. Undefined: no fencing.
   */
  fenceBy(fence: { readonly lease: string; readonly epoch: number } | undefined): void {
    this.fence = fence;
  }

  /**
   * Scheduling writes that meet an unreachable database (a restart, a failover) are tried again for up to
   * `ms` before the error reaches the caller: the leader's loop then carries on where it was.
   */
  retryUnavailable(ms: number): void {
    this.unavailableRetryMs = ms;
  }

  /** A leader lease in this store's schema (pg/leader-lease.ts). */
  leaderLease(name: string): LeaderLease {
    return new LeaderLease(this.pool, name);
  }

  /** Runs with their stages and documents, in one statement (a leader taking up runs accepted elsewhere). */
  async runsForIntake(runIds: readonly string[]): Promise<Array<{ run: RunRecord; document: unknown; stages: StageRecord[] }>> {
    if (runIds.length === 0) return [];
    return this.single((tx) => read.runsForIntake(tx, runIds));
  }

  /** A run's stored (sealed) inputs field, in one statement; undefined when the tenant has no such run. */
  async sealedInputs(tenant: string, runId: string): Promise<unknown> {
    const { rows } = await this.single((tx) => tx.query<{ inputs: string }>(named("SELECT inputs FROM runs WHERE tenant = $1 AND id = $2"), [tenant, runId]));
    return rows[0] === undefined ? undefined : (JSON.parse(rows[0].inputs) as unknown);
  }

  /** Ids and statuses of the given runs (the ones missing were never stored). */
  async runStatuses(runIds: readonly string[]): Promise<Map<string, RunStatus>> {
    const { rows } = await this.single((tx) => tx.query<{ id: string; status: RunStatus }>("SELECT id, status FROM runs WHERE id = ANY($1::text[])", [runIds]));
    return new Map(rows.map((r) => [r.id, r.status]));
  }

  /** The runs not finished yet, oldest first: what a leader checks its own set against. */
  async activeRunIds(): Promise<Array<{ id: string; tenant: string }>> {
    const { rows } = await this.single((tx) => tx.query<{ id: string; tenant: string }>("SELECT id, tenant FROM runs WHERE status IN ('queued', 'running') ORDER BY created_at, id"));
    return rows;
  }

  async cancelRun(tenant: string, runId: string): Promise<CancelResult | undefined> {
    return this.write((tx) => attempts.cancelRun(tx, this.ctx, tenant, runId));
  }

  /** Closes the open attempts no live lease holds (those of a stopped agent, or unclaimed); see pg/leases.ts. */
  async recover(): Promise<RecoveryReport> {
    return this.schedulingWrite((tx) => interruptOpen(tx, this.ctx, "unleased", INTERRUPTED_REASON));
  }

  async eventsSince(tenant: string, runId: string, afterEventId: number, limit?: number): Promise<EventRecord[] | undefined> {
    checkAfterEventId(afterEventId);
    return this.read((tx) => read.eventsSince(tx, tenant, runId, afterEventId, limit));
  }

  async artifactsOf(runId: string, stageIds: readonly string[]): Promise<ArtifactRecord[]> {
    return this.single((tx) => read.artifactsOf(tx, runId, stageIds));
  }

  async queueDepth(): Promise<QueueDepth> {
    return this.read((tx) => read.queueDepth(tx));
  }

  async usage(tenant: string, from: string, to: string): Promise<UsageRow[]> {
    return this.single((tx) => usage(tx, tenant, from, to, this.ctx.stamp()));
  }

  async stageTimes(tenant: string, workflow: string, runs: number): Promise<WorkflowRunTimes[]> {
    return this.single((tx) => stageTimes(tx, tenant, workflow, runs));
  }

  /** A worker takes placed attempts nobody holds, under a lease it must renew (pg/leases.ts). */
  async claimPlaced(options: ClaimOptions): Promise<AttemptRecord[]> {
    checkLease(options);
    return this.write((tx) => claimPlaced(tx, options));
  }

  /** Renews the leases `owner` still holds; the others come back as lost. */
  async heartbeat(owner: string, attemptIds: readonly string[], leaseMs: number): Promise<HeartbeatResult> {
    checkLease({ owner, leaseMs });
    return this.write((tx) => heartbeat(tx, owner, attemptIds, leaseMs));
  }

  /** Interrupts the attempts whose lease expired (their worker is gone) and requeues their stages. */
  async expireLeases(): Promise<RecoveryReport> {
    return this.write((tx) => interruptOpen(tx, this.ctx, "expired", "interrupted: the lease expired (the worker stopped renewing it)"));
  }

  /** Calls `onWake` when stages become ready or attempts are placed: a hint to poll now (pg/wakeups.ts). */
  listen(onWake: (what: Wake, payload: string) => void): Wakeups {
    this.assertOpen();
    const wakeups = listen(this.url, this.schema, onWake);
    this.listeners.add(wakeups);
    return {
      listening: wakeups.listening,
      get connected() {
        return wakeups.connected;
      },
      close: async () => {
        this.listeners.delete(wakeups);
        await wakeups.close();
      },
    };
  }

  /** Waits for the calls in flight, then closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.listeners].map((l) => l.close()));
    this.listeners.clear();
    await this.pool.end();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreUnavailableError("the store is closed");
  }

  private async schedulingWrite<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.unavailableRetryMs;
    for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
      try {
        const fence = this.fence;
        return await this.write(
          fence === undefined
            ? fn
            : async (tx) => {
                await assertEpoch(tx, fence.lease, fence.epoch);
                return fn(tx);
              }
        );
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || this.closed || Date.now() + pause > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  private async write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    this.assertOpen();
    return transaction(this.pool, fn);
  }

  /** One statement (a read, or a write made of one statement): it is its own transaction. */
  private async single<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    this.assertOpen();
    return once(this.pool, fn);
  }

  private async read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    this.assertOpen();
    return transaction(this.pool, fn, "repeatable read", true);
  }
}
