import { createPublicKey, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { CHECKPOINT_ACTION, CHECKPOINT_ACTOR, SHUTDOWN_ACTION, START_ACTION, UNSEALED_TAIL_ACTION } from "./actions.ts";
import { auditEvent, chainHash, GENESIS_HASH, MAX_ENTRY_BYTES, serializeEntry, type AuditEntry, type AuditEvent } from "./entry.ts";
import { LOG_FILE } from "./paths.ts";
import { openNodeLogFile, type AuditLogFile, type OpenAuditLogFile } from "./log-file.ts";
import { keyId, loadSigningKey, signCheckpoint, type SignedCheckpoint } from "./signing.ts";
import type { CheckpointSink } from "./sink.ts";
import { verifyTailAtOpen } from "./tail.ts";
import { acquireWriterLock } from "./writer-lock.ts";

export { LOG_FILE } from "./paths.ts";
export { CHECKPOINT_ACTION, CHECKPOINT_ACTOR, SHUTDOWN_ACTION, START_ACTION, UNSEALED_TAIL_ACTION } from "./actions.ts";

/** The entries an open found unsealed, verified and then signed. */
export interface UnsealedTail {
  readonly entries: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** The entry the sink's latest checkpoint covered, which the tail was verified against (0: none). */
  readonly latestExportedSeq: number;
}

/** Time and timers, injectable so tests drive idle checkpoints without waiting. */
export interface Clock {
  now(): number;
  setTimer(callback: () => void, ms: number): { cancel(): void };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

export interface AuditLogOptions {
  /** Directory holding `log.jsonl`. */
  readonly dir: string;
  /** The Ed25519 private key (PEM), opened read-only; see loadSigningKey. */
  readonly signingKeyPath: string;
  readonly sink: CheckpointSink;
  /** A checkpoint after this many entries (default 1000). Entries since the last checkpoint are what a crash leaves unsealed. */
  readonly checkpointEvery?: number;
  /** And at least this often, even when idle (default 60 000 ms). */
  readonly checkpointIntervalMs?: number;
  readonly clock?: Clock;
  readonly openFile?: OpenAuditLogFile;
  /** Called when a timer-driven checkpoint fails (the log is then closed to appends). */
  readonly onBackgroundError?: (error: AuditUnavailableError) => void;
}

/** The audit log cannot record: the caller must refuse the request it was recording (503, fail closed). */
export class AuditUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AuditUnavailableError";
  }
}

export interface Appended {
  readonly seq: number;
  readonly hash: string;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

interface Batch {
  lines: string[];
  waiters: Waiter[];
  checkpoints: SignedCheckpoint[];
}

const newBatch = (): Batch => ({ lines: [], waiters: [], checkpoints: [] });

/**
 * The append-only, hash-chained audit log.
 *
 * Durability (group commit): entries appended during one event-loop turn, plus any that arrive while the
 * previous batch is being synced, are written together and fdatasync'ed once; `append` resolves only after
 * that sync, and after any checkpoint in the batch is durable in the sink. A crash loses only entries whose
 * `append` had not resolved (at most a torn last line, which `open` cuts off): nothing acknowledged is lost.
 *
 * Failure is sticky: once a write, sync or export fails, the on-disk state is unknown, so every pending and
 * later `append` rejects with AuditUnavailableError until the log is reopened (which recovers from disk).
 */
export class AuditLog {
  private seq = 0;
  private head = GENESIS_HASH;
  private sinceCheckpoint = 0;
  private batch = newBatch();
  private flushScheduled = false;
  private flushing: Promise<void> | undefined;
  private failure: AuditUnavailableError | undefined;
  private closed = false;
  private timer: { cancel(): void } | undefined;
  private unsealedAtOpen: UnsealedTail | undefined;
  private readonly every: number;
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private readonly keyId: string;

  private constructor(
    private readonly file: AuditLogFile,
    private readonly signingKey: KeyObject,
    private readonly options: AuditLogOptions,
    private readonly lock: { release(): void },
  ) {
    this.every = options.checkpointEvery ?? 1000;
    this.intervalMs = options.checkpointIntervalMs ?? 60_000;
    this.clock = options.clock ?? systemClock;
    this.keyId = keyId(signingKey);
  }

  /**
   * Opens (or creates) the log and verifies its tail against the chain and the sink's latest exported checkpoint
   * (AuditTailError when they disagree: nothing is signed over such a log). A tail no checkpoint signed (the
   * writer crashed) is then sealed, an UNSEALED_TAIL_ACTION entry records it, and a checkpoint seals that too.
   * Throws if the key, file or sink is unusable.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const every = options.checkpointEvery ?? 1000;
    const intervalMs = options.checkpointIntervalMs ?? 60_000;
    if (!Number.isInteger(every) || every < 1) throw new RangeError(`checkpointEvery must be a positive integer (got ${every})`);
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`checkpointIntervalMs must be a positive number of milliseconds (got ${intervalMs})`);
    const signingKey = loadSigningKey(options.signingKeyPath);
    const lock = acquireWriterLock(options.dir);
    let file: AuditLogFile;
    try {
      file = await (options.openFile ?? openNodeLogFile)(join(options.dir, LOG_FILE));
    } catch (err) {
      lock.release();
      throw err;
    }
    const log = new AuditLog(file, signingKey, options, lock);
    try {
      const size = await file.size();
      const end = await completeLinesEnd(file, size);
      const tail = await verifyTailAtOpen(file, end, { publicKey: createPublicKey(signingKey), latest: await options.sink.latest() });
      // A torn last line is a write cut off by a crash, never acknowledged: cut it off only once the rest verified.
      if (end < size) await file.truncate(end);
      log.seq = tail.seq;
      log.head = tail.head;
      if (tail.endsWithShutdown) {
        // Its writer closed it cleanly: the next open marks where a new session starts, under a signature, so that
        // entries appended while no writer ran cannot pass for a crashed session's tail (see verify's nextSession).
        log.addSelfEntry(START_ACTION, { after: tail.seq }); // the shutdown's checkpoint; verify requires exactly this
        log.addCheckpoint();
        await log.flush();
      } else if (tail.seq > 0) {
        // The last session ended without its shutdown checkpoint. Its unsealed tail (possibly empty) is verified
        // above; sign it, then record it, so even a tail dropped whole before this start leaves this mark.
        log.unsealedAtOpen = { entries: tail.unsealed, firstSeq: tail.lastCheckpointSeq + 1, lastSeq: tail.seq, latestExportedSeq: tail.latestExportedSeq };
        if (tail.unsealed > 0) log.addCheckpoint();
        log.addSelfEntry(UNSEALED_TAIL_ACTION, { ...log.unsealedAtOpen, latestExportedSeq: tail.latestExportedSeq || null });
        // Sealed at once: a note that a later crash could leave unsealed would be as easy to drop as the tail it reports.
        log.addCheckpoint();
        await log.flush();
      }
    } catch (err) {
      log.timer?.cancel();
      await file.close();
      lock.release();
      throw err;
    }
    log.armTimer();
    return log;
  }

  /**
   * Set when this open continued a log whose last session ended without its shutdown checkpoint: the tail it
   * found unsealed (`entries` may be 0) and then sealed. Undefined for a new log or one closed cleanly.
   */
  get unsealedTail(): UnsealedTail | undefined {
    return this.unsealedAtOpen;
  }

  /** The last assigned seq and chain hash. */
  get position(): Appended {
    return { seq: this.seq, hash: this.head };
  }

  /** Why the log refuses appends, if it does. */
  get unavailable(): AuditUnavailableError | undefined {
    return this.failure;
  }

  /** Records an event; resolves once it is durable. Throws AuditUnavailableError when it cannot be recorded. */
  async append(input: AuditEvent): Promise<Appended> {
    if (this.failure) throw this.failure;
    if (this.closed) throw new AuditUnavailableError("the audit log is closed");
    const event = auditEvent(input);
    const appended = this.add({
      actor: event.actor,
      tenant: event.tenant ?? null,
      action: event.action,
      object: event.object ?? null,
      outcome: event.outcome,
      source: event.source ?? null,
      data: event.data ?? {},
    });
    this.sinceCheckpoint++;
    if (this.sinceCheckpoint >= this.every) this.addCheckpoint();
    return new Promise<Appended>((resolve, reject) => {
      this.batch.waiters.push({ resolve: () => resolve(appended), reject });
      this.scheduleFlush();
    });
  }

  /** Resolves once everything recorded so far (timer checkpoints included) is durable; rejects if the log failed. */
  async whenIdle(): Promise<void> {
    while (this.flushing || this.batch.lines.length > 0) await this.flush();
    if (this.failure) throw this.failure;
  }

  /** Records the shutdown and seals everything with a final checkpoint, waits for it, and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.timer?.cancel();
    if (!this.failure) {
      // Always, even right after a checkpoint: a log whose last checkpoint follows a shutdown entry was closed cleanly.
      this.addSelfEntry(SHUTDOWN_ACTION, {});
      this.addCheckpoint();
    }
    this.closed = true;
    try {
      await this.flush();
    } finally {
      await this.file.close();
      this.lock.release();
    }
    if (this.failure) throw this.failure;
  }

  /** An entry the log writes about itself (not counted towards the next checkpoint: the caller adds one). */
  private addSelfEntry(action: string, data: Record<string, unknown>): void {
    this.add({ actor: CHECKPOINT_ACTOR, tenant: null, action, object: null, outcome: "success", source: null, data });
  }

  private add(fields: Omit<AuditEntry, "seq" | "time" | "prev">): Appended {
    const entry: AuditEntry = { seq: this.seq + 1, time: new Date(this.clock.now()).toISOString(), prev: this.head, ...fields };
    const line = serializeEntry(entry);
    const bytes = Buffer.byteLength(line);
    if (bytes > MAX_ENTRY_BYTES) throw new RangeError(`audit entry is ${bytes} bytes; at most ${MAX_ENTRY_BYTES}: record less in data`);
    this.seq = entry.seq;
    this.head = chainHash(entry.prev, Buffer.from(line, "utf8"));
    this.batch.lines.push(line);
    return { seq: this.seq, hash: this.head };
  }

  /**
   * Appends a checkpoint entry signing the current head, and queues for export a checkpoint signing the head
   * that includes that entry; the export happens once the batch holding it is durable.
   */
  private addCheckpoint(): void {
    const time = new Date(this.clock.now()).toISOString();
    const checkpoint = signCheckpoint({ seq: this.seq, hash: this.head, time }, this.signingKey, this.keyId);
    // The entry's time is the checkpoint's, so every byte of a checkpoint line is either signed or derived.
    const entry: AuditEntry = {
      seq: this.seq + 1,
      time,
      actor: CHECKPOINT_ACTOR,
      tenant: null,
      action: CHECKPOINT_ACTION,
      object: null,
      outcome: "success",
      source: null,
      data: { checkpoint: { seq: checkpoint.seq, hash: checkpoint.hash, time }, keyId: checkpoint.keyId, signature: checkpoint.signature },
      prev: this.head,
    };
    const line = serializeEntry(entry);
    this.seq = entry.seq;
    this.head = chainHash(entry.prev, Buffer.from(line, "utf8"));
    this.batch.lines.push(line);
    // The exported copy covers the checkpoint entry itself, so removing or altering the log's last line shows too.
    this.batch.checkpoints.push(signCheckpoint({ seq: this.seq, hash: this.head, time }, this.signingKey, this.keyId));
    this.sinceCheckpoint = 0;
    this.armTimer();
  }

  private armTimer(): void {
    this.timer?.cancel();
    if (this.closed) return;
    this.timer = this.clock.setTimer(() => this.onTimer(), this.intervalMs);
  }

  private onTimer(): void {
    if (this.closed || this.failure) return;
    this.addCheckpoint();
    this.flush().catch((err: unknown) => this.options.onBackgroundError?.(err as AuditUnavailableError));
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush().catch(() => undefined); // each waiter gets the error itself
    });
  }

  /** Writes batches until none is left; one runs at a time, so appends arriving meanwhile share the next sync. */
  private flush(): Promise<void> {
    if (!this.flushing) {
      this.flushing = this.writeBatches().finally(() => {
        this.flushing = undefined;
      });
    }
    return this.flushing;
  }

  private async writeBatches(): Promise<void> {
    while (this.batch.lines.length > 0) {
      const batch = this.batch;
      this.batch = newBatch();
      if (this.failure) {
        for (const waiter of batch.waiters) waiter.reject(this.failure);
        continue;
      }
      let stage = "write";
      try {
        await this.file.append(Buffer.from(`${batch.lines.join("\n")}\n`, "utf8"));
        stage = "sync";
        await this.file.sync();
        stage = "checkpoint export";
        for (const checkpoint of batch.checkpoints) await this.options.sink.export(checkpoint);
      } catch (err) {
        this.failure = new AuditUnavailableError(`the audit log cannot record (${stage} failed: ${(err as Error).message}); refusing further appends until it is reopened`, { cause: err });
        this.timer?.cancel();
        for (const waiter of [...batch.waiters, ...this.batch.waiters]) waiter.reject(this.failure);
        this.batch = newBatch();
        throw this.failure;
      }
      for (const waiter of batch.waiters) waiter.resolve();
    }
    if (this.failure) throw this.failure;
  }
}

/**
 * Where the last complete line ends. Bytes after it are a torn write (a crash mid-append, never acknowledged);
 * the caller cuts them off once the rest has verified.
 */
async function completeLinesEnd(file: AuditLogFile, size: number): Promise<number> {
  if (size === 0) return 0;
  const window = MAX_ENTRY_BYTES * 2 + 2;
  const start = Math.max(0, size - window);
  const tail = await file.read(start, size - start);
  if (tail[tail.length - 1] === 0x0a) return size;
  const lastNewline = tail.lastIndexOf(0x0a);
  if (lastNewline === -1 && start > 0) throw new AuditUnavailableError("the audit log's last line is longer than any entry can be: run 'gpufabric audit verify' and restore the log");
  return start + lastNewline + 1;
}
