/**
 * Attempt leases, in the style of graphile-worker and pg-boss: the worker that runs an attempt holds a
 * lease on it and renews it with heartbeats; an attempt whose lease expired is interrupted and its stage
 * placed again. The database's clock (clock_timestamp()) decides expiry, so control planes and workers
 * with skewed clocks agree on it.
 *
 *  - claimPlaced: a worker (through a control plane) takes placed attempts nobody holds yet. Several control
 *    planes may serve claims at once: `FOR UPDATE SKIP LOCKED` hands each attempt to one of them, and
 *    none waits on another's claim.
 *  - heartbeat: renews the leases the caller still holds; the ids it no longer holds (closed, expired and
 *    interrupted, held by another) come back as lost, so the worker stops their processes.
 *  - interruptOpen (recover, expireLeases): closes open attempts as interrupted and puts their stages back to
 *    ready. recover() at a control plane's start leaves alone the attempts whose lease is live: another
 *    control plane's workers are running them.
 */
import { closeParams, toAttempt, type AttemptRow, type StageRow } from "../rows.ts";
import { interruptedEvent, requeuesStage } from "../transitions.ts";
import type { AttemptRecord, RecoveryReport } from "../types.ts";
import { named, type Tx } from "./connection.ts";
import { closeAttempt, insertEvent, notify, setStageStatus, type OpContext } from "./sql.ts";

export interface ClaimOptions {
  /** Who takes the lease: a worker's identity. */
  readonly owner: string;
  /** How long the lease lasts without a heartbeat. */
  readonly leaseMs: number;
  /** Most attempts taken at once (default 16). */
  readonly limit?: number;
  /** Only attempts placed on these devices (all of the attempt's GPUs among them): the worker's own. */
  readonly devices?: readonly string[];
}

export interface HeartbeatResult {
  /** Leases renewed, with their new expiry. */
  readonly renewed: ReadonlyArray<{ readonly attemptId: string; readonly expiresAt: string }>;
  /** Attempts the caller no longer holds: stop their processes. */
  readonly lost: readonly string[];
}

export function checkLease(options: { readonly owner: string; readonly leaseMs: number; readonly limit?: number }): void {
  if (typeof options.owner !== "string" || options.owner === "" || options.owner.length > 255) {
    throw new RangeError("owner must name the lease holder (1 to 255 characters), e.g. the worker's node name");
  }
  if (!Number.isInteger(options.leaseMs) || options.leaseMs < 100 || options.leaseMs > 3_600_000) {
    throw new RangeError(`leaseMs must be a whole number of milliseconds from 100 to 3600000 (got ${options.leaseMs})`);
  }
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > 10_000)) {
    throw new RangeError(`limit must be a whole number from 1 to 10000 (got ${options.limit})`);
  }
}

export async function claimPlaced(tx: Tx, options: ClaimOptions): Promise<AttemptRecord[]> {
  const { rows } = await tx.query<AttemptRow>(
    named(`WITH claimable AS (
       SELECT id FROM attempts
       WHERE status = 'placed' AND lease_owner IS NULL AND ($4::jsonb IS NULL OR gpus <@ $4::jsonb)
       ORDER BY placed_at, id
       LIMIT $3
       FOR UPDATE SKIP LOCKED)
     UPDATE attempts a SET lease_owner = $1, lease_expires_at = clock_timestamp() + $2 * interval '1 millisecond'
     FROM claimable WHERE a.id = claimable.id
     RETURNING a.*`),
    [options.owner, options.leaseMs, options.limit ?? 16, options.devices === undefined ? null : JSON.stringify(options.devices)]
  );
  return rows.sort((x, y) => (x.placed_at < y.placed_at ? -1 : x.placed_at > y.placed_at ? 1 : x.id < y.id ? -1 : 1)).map(toAttempt);
}

export async function heartbeat(tx: Tx, owner: string, attemptIds: readonly string[], leaseMs: number): Promise<HeartbeatResult> {
  // Locked in id order, as cancelRun locks a run's attempts, so the two never wait on each other in a cycle.
  const { rows } = await tx.query<{ id: string; lease_expires_at: string }>(
    named(`UPDATE attempts a SET lease_expires_at = clock_timestamp() + $3 * interval '1 millisecond'
     FROM (SELECT id FROM attempts
           WHERE id = ANY($2::text[]) AND lease_owner = $1 AND status IN ('placed', 'running', 'sealing') AND lease_expires_at > clock_timestamp()
           ORDER BY id FOR UPDATE) held
     WHERE a.id = held.id
     RETURNING a.id, a.lease_expires_at`),
    [owner, attemptIds, leaseMs]
  );
  const renewed = new Set(rows.map((r) => r.id));
  return {
    renewed: rows.map((r) => ({ attemptId: r.id, expiresAt: r.lease_expires_at })),
    lost: attemptIds.filter((id) => !renewed.has(id)),
  };
}

/**
 * Closes the open attempts that `which` selects as interrupted, with `reason`, and requeues their stages.
 * Their runs are locked first, in id order, then the attempts (the locking order of sql.ts).
 */
export async function interruptOpen(tx: Tx, ctx: OpContext, which: "unleased" | "expired", reason: string): Promise<RecoveryReport> {
  const filter =
    which === "expired"
      ? "lease_owner IS NOT NULL AND lease_expires_at <= clock_timestamp()"
      : "(lease_owner IS NULL OR lease_expires_at <= clock_timestamp())";
  const open = `SELECT run_id FROM attempts WHERE status IN ('placed', 'running', 'sealing') AND ${filter}`;
  const runs = await tx.query<{ id: string }>(named(`SELECT id FROM runs WHERE id IN (${open}) ORDER BY id FOR UPDATE`));
  // Only attempts of the runs locked above: one whose lease expired meanwhile waits for the next pass.
  const { rows } = await tx.query<AttemptRow>(
    named(`SELECT * FROM attempts WHERE run_id = ANY($1::text[]) AND status IN ('placed', 'running', 'sealing') AND ${filter} ORDER BY id FOR UPDATE`),
    [runs.rows.map((r) => r.id)]
  );
  rows.sort((x, y) => (x.placed_at < y.placed_at ? -1 : x.placed_at > y.placed_at ? 1 : x.id < y.id ? -1 : 1));
  const now = ctx.stamp();
  const interrupted: AttemptRecord[] = [];
  let requeued = 0;
  for (const a of rows) {
    interrupted.push(toAttempt(await closeAttempt(tx, closeParams(a.id, "interrupted", reason, {}, now))));
    const stage = (await tx.query<StageRow>(named("SELECT status FROM stages WHERE run_id = $1 AND stage_id = $2"), [a.run_id, a.stage_id])).rows[0]!;
    if (requeuesStage(stage.status)) {
      await setStageStatus(tx, a.run_id, a.stage_id, "ready", now);
      requeued++;
    }
    await insertEvent(tx, a.run_id, a.stage_id, "stage.interrupted", { ...interruptedEvent(a), ...(which === "expired" && { leaseOwner: a.lease_owner }) }, now);
  }
  if (requeued > 0) await notify(tx, ctx, "ready");
  return { interrupted, requeuedStages: requeued };
}
