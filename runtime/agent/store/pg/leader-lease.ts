/**
 * Leader leases in PostgreSQL: one row of `leader_lease` per lease name, carrying its holder, an epoch and
 * an expiry. The control planes of a cluster race for one lease; whoever holds it leads (runs the scheduler).
 *
 *  - The database's clock (clock_timestamp()) is the only clock that decides expiry, as for attempt leases
 *    (leases.ts): control planes with skewed clocks agree on who holds the lease.
 *  - Every acquisition increments the epoch, and the row is never deleted (release clears the holder and
 *    keeps the epoch), so an epoch names exactly one tenure and is never handed out again.
 *  - Each operation is one statement, atomic on its own: two contenders cannot both take the lease.
 *  - Fencing: a leader's write runs in a transaction that first checks its epoch is still the live one and
 *    keeps the lease row share-locked until it commits (assertEpoch, fenced). A new leader's acquisition
 *    must lock that row to update it, so it waits for the write in flight to commit: every write of epoch N
 *    commits before epoch N + 1 begins, and a stale leader's write is refused inside its own transaction.
 */
import type pg from "pg";
import { named, once, transaction, type Tx } from "./connection.ts";

/** A leader's write was refused: its epoch is no longer the lease's live one. Stop acting as leader. */
export class StaleLeaderError extends Error {
  constructor(
    message: string,
    readonly lease: string,
    readonly epoch: number
  ) {
    super(message);
    this.name = "StaleLeaderError";
  }
}

export interface Tenure {
  /** The epoch of this tenure: greater than every epoch the lease had before. */
  readonly epoch: number;
  /** When the lease lapses without a renewal, by the database's clock (ISO 8601). */
  readonly expiresAt: string;
}

export interface LeaseState {
  readonly holder: string | null;
  readonly epoch: number;
  readonly expiresAt: string;
  /** Held and not yet expired, by the database's clock. */
  readonly live: boolean;
}

export function checkLeaseName(name: string): void {
  if (typeof name !== "string" || name === "" || name.length > 255) {
    throw new RangeError(`lease name must be 1 to 255 characters, e.g. 'scheduler' (got ${JSON.stringify(name)})`);
  }
}

export function checkHolder(holder: string): void {
  if (typeof holder !== "string" || holder === "" || holder.length > 255) {
    throw new RangeError(`holder must name the contender (1 to 255 characters), e.g. its pod name plus a per-process id (got ${JSON.stringify(holder)})`);
  }
}

export function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 100 || ttlMs > 3_600_000) {
    throw new RangeError(`ttlMs must be a whole number of milliseconds from 100 to 3600000 (got ${ttlMs})`);
  }
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 1) throw new RangeError(`epoch must be a whole number of at least 1, as tryAcquire returned it (got ${epoch})`);
}

// The first acquisition inserts the row; later ones update it only where nobody holds a live lease. On a
// conflict PostgreSQL locks the row and re-checks the WHERE against its latest committed version, so of
// several racing contenders exactly one gets a row back. A holder that acquires again while it still holds
// the lease gets a new epoch too: a restarted process reusing its holder id fences off its former self.
const ACQUIRE = `INSERT INTO leader_lease AS l (name, holder, epoch, acquired_at, expires_at)
  VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp() + $3 * interval '1 millisecond')
  ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1,
    acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
  WHERE l.holder IS NULL OR l.expires_at <= clock_timestamp() OR l.holder = EXCLUDED.holder
  RETURNING l.epoch, l.expires_at`;

// Only a live tenure is extended: once it lapsed, another contender may have acted on its expiry, so the
// former holder must acquire again (a new epoch) rather than resume the old one.
const RENEW = `UPDATE leader_lease SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'
  WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()
  RETURNING expires_at`;

const RELEASE = `UPDATE leader_lease SET holder = NULL, expires_at = clock_timestamp()
  WHERE name = $1 AND holder = $2 AND epoch = $3`;

// FOR SHARE, not FOR KEY SHARE: the weaker lock would not block the acquiring UPDATE (which changes no key).
const FENCE = `SELECT holder, epoch, expires_at > clock_timestamp() AS live FROM leader_lease WHERE name = $1 FOR SHARE`;

/**
 * Checks, inside the caller's transaction, that `epoch` is the live tenure of lease `name`, and share-locks
 * the lease row until the transaction ends, so no new tenure can begin before it commits. Throws a
 * StaleLeaderError otherwise: the caller's transaction then rolls back, and none of its writes lands.
 * Call it before the transaction's writes, on the same connection (the pool's search_path names the schema).
 */
export async function assertEpoch(tx: Tx, name: string, epoch: number): Promise<void> {
  const { rows } = await tx.query<{ holder: string | null; epoch: string | number; live: boolean }>(named(FENCE), [name]);
  const row = rows[0];
  const current = row === undefined ? 0 : Number(row.epoch);
  if (row !== undefined && current === epoch && row.holder !== null && row.live) return;
  const why =
    row === undefined
      ? "nobody ever held it"
      : current !== epoch
        ? `it is at epoch ${current} now`
        : row.holder === null
          ? "that tenure was released"
          : "that tenure expired";
  throw new StaleLeaderError(`write refused: epoch ${epoch} no longer leads lease '${name}' (${why}); stop acting as leader`, name, epoch);
}

/** One named lease, over a pool made by createPool (its search_path names the store's schema). */
export class LeaderLease {
  constructor(
    private readonly pool: pg.Pool,
    readonly name: string
  ) {
    checkLeaseName(name);
  }

  /** Takes the lease if nobody holds a live tenure (or `holder` does): a new epoch; null when another holds it. */
  async tryAcquire(holder: string, ttlMs: number): Promise<Tenure | null> {
    checkHolder(holder);
    checkTtl(ttlMs);
    const { rows } = await once(this.pool, (tx) => tx.query<{ epoch: string | number; expires_at: string }>(named(ACQUIRE), [this.name, holder, ttlMs]));
    const row = rows[0];
    return row === undefined ? null : { epoch: Number(row.epoch), expiresAt: row.expires_at };
  }

  /**
   * Extends the tenure by `ttlMs` from now if `holder` still holds it at `epoch` and it has not expired.
   * False means the tenure is over: the caller must stop acting as leader at once.
   */
  async renew(holder: string, epoch: number, ttlMs: number): Promise<boolean> {
    return (await this.renewUntil(holder, epoch, ttlMs)) !== null;
  }

  /** renew(), returning the new expiry (null when the tenure is over). */
  async renewUntil(holder: string, epoch: number, ttlMs: number): Promise<string | null> {
    checkHolder(holder);
    checkEpoch(epoch);
    checkTtl(ttlMs);
    const { rows } = await once(this.pool, (tx) => tx.query<{ expires_at: string }>(named(RENEW), [this.name, holder, epoch, ttlMs]));
    return rows[0]?.expires_at ?? null;
  }

  /** Gives the tenure up now, so another contender can take the lease without waiting for its expiry. */
  async release(holder: string, epoch: number): Promise<boolean> {
    checkHolder(holder);
    checkEpoch(epoch);
    const result = await once(this.pool, (tx) => tx.query(named(RELEASE), [this.name, holder, epoch]));
    return result.rowCount === 1;
  }

  /** The lease's row as the database sees it now; undefined before the first acquisition. */
  async state(): Promise<LeaseState | undefined> {
    const { rows } = await once(this.pool, (tx) =>
      tx.query<{ holder: string | null; epoch: string | number; expires_at: string; live: boolean }>(
        named("SELECT holder, epoch, expires_at, holder IS NOT NULL AND expires_at > clock_timestamp() AS live FROM leader_lease WHERE name = $1"),
        [this.name]
      )
    );
    const row = rows[0];
    return row === undefined ? undefined : { holder: row.holder, epoch: Number(row.epoch), expiresAt: row.expires_at, live: row.live };
  }

  /**
   * Runs `fn` in one transaction fenced by `epoch` (assertEpoch first): it commits only as part of that
   * tenure, and throws a StaleLeaderError, writing nothing, once the tenure is over.
   */
  async fenced<T>(epoch: number, fn: (tx: Tx) => Promise<T>): Promise<T> {
    checkEpoch(epoch);
    return transaction(this.pool, async (tx) => {
      await assertEpoch(tx, this.name, epoch);
      return fn(tx);
    });
  }
}
