/**
 * Group commit for the embedded store.
 *
 * Writes queued while the previous group is being synced (or, when idle, in the same turn of the event
 * loop) are applied in order in one transaction, each under its own savepoint so one failing write leaves
 * the others intact, and every promise settles only after that transaction has committed (and, at `full`,
 * been synced). One commit and one fsync then cover many writes, and the group grows with the load: the
 * slower the disk, the more writes each sync covers.
 *
 * At `full` on a file database the WAL is synced here after each group commit (fdatasync on libuv's
 * thread pool, so the event loop keeps working during the sync); otherwise `walPath` is undefined and a
 * write settles as soon as its group has committed.
 *
 * A failed sync leaves unknown what reached the disk, so the committer then refuses every write (fail
 * closed) until the store is reopened.
 */
import { closeSync, fdatasync, fstatSync, fsyncSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import { StoreUnavailableError } from "./errors.ts";

export const fdatasyncAsync = (fd: number) => new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));

interface PendingWrite {
  readonly apply: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A committed write waiting for the sync that makes it durable. */
interface Committed {
  readonly op: PendingWrite;
  readonly outcome: Outcome;
}

export interface GroupCommitOptions {
  /** Most writes committed in one transaction. */
  readonly maxBatch: number;
  /** The WAL file to sync after each group commit; undefined: writes settle on commit. */
  readonly walPath: string | undefined;
  readonly syncWal: (fd: number) => Promise<void>;
}

export class GroupCommit {
  private readonly pending: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly inSavepoint: (apply: () => unknown) => unknown;
  private walFd: { fd: number; ino: number } | undefined;
  /** Committed writes the next sync covers. */
  private unsynced: Committed[] = [];
  private syncing: Promise<void> | undefined;
  private failure: StoreUnavailableError | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly options: GroupCommitOptions
  ) {
    // Called inside the batch's transaction, better-sqlite3 runs this as a SAVEPOINT.
    this.inSavepoint = db.transaction((apply: () => unknown) => apply());
  }

  /** Whether each group is synced here after its commit. */
  get syncsWal(): boolean {
    return this.options.walPath !== undefined;
  }

  /** Queues a write for the next group commit; settles once it is committed and durable (or has failed). */
  write<T>(apply: () => T): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ apply, resolve: resolve as (value: unknown) => void, reject });
      this.scheduleFlush();
    });
  }

  /** Commits and syncs every queued write now, settling them all. */
  async drain(): Promise<void> {
    while (this.syncing) await this.syncing.catch(() => undefined);
    while (this.pending.length > 0) this.commit(this.pending.splice(0, this.options.maxBatch));
    if (this.unsynced.length > 0) await this.sync();
  }

  /** Closes the WAL's descriptor (after drain()). */
  closeWal(): void {
    if (this.walFd) closeSync(this.walFd.fd);
    this.walFd = undefined;
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
    this.commit(this.pending.splice(0, this.options.maxBatch));
    if (this.options.walPath !== undefined) void this.sync();
    else if (this.pending.length > 0) this.scheduleFlush();
  }

  /** Applies a group of writes in one transaction; settles them now (no per-commit sync) or queues them for the sync. */
  private commit(batch: PendingWrite[]): void {
    if (this.failure) {
      for (const op of batch) op.reject(this.failure);
      return;
    }
    const outcomes: Outcome[] = [];
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
    if (this.options.walPath === undefined) {
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
        await this.options.syncWal(this.openWal());
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
    const path = this.options.walPath!;
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
}

function settle(op: PendingWrite, outcome: Outcome): void {
  if (outcome.ok) op.resolve(outcome.value);
  else op.reject(outcome.error);
}
