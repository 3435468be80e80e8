/**
 * A contender for a leader lease (leader-lease.ts): every ttl/3 it renews the tenure it holds, or tries to
 * acquire the lease when it holds none, and says when it became leader (with the epoch to fence its writes
 * with) and when it lost leadership.
 *
 * It steps down (emits "lost-leadership") as soon as:
 *  - a renewal returns false (another contender took over, or the tenure lapsed);
 *  - no renewal has succeeded for a whole TTL, counted on this process's monotonic clock from the moment
 *    the last successful renewal was sent: the database counts the TTL from a later moment (when it ran
 *    the statement), so this side always gives up first, even when the database cannot be reached;
 *  - stop() is called.
 * Between two renewals a partitioned leader may still believe it leads: its writes are kept out by
 * fencing (assertEpoch), not by this loop.
 */
import { EventEmitter } from "node:events";
import { checkHolder, checkTtl, type LeaderLease } from "./leader-lease.ts";

export interface ElectorOptions {
  /** Who contends: unique per process (e.g. pod name plus a random suffix). */
  readonly holder: string;
  /** How long a tenure lasts without renewal; renewals and attempts run every ttlMs / 3. */
  readonly ttlMs: number;
  /** A failed call (the database unreachable, say): the loop goes on; default ignores it. */
  readonly onError?: (err: unknown) => void;
}

export type LostReason = "renewal refused" | "renewal overdue" | "stopped";

export interface ElectorEvents {
  "became-leader": [epoch: number];
  "lost-leadership": [epoch: number, reason: LostReason];
}

export class LeaderElector extends EventEmitter<ElectorEvents> {
  readonly holder: string;
  readonly ttlMs: number;
  private current: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private running = false;
  private readonly onError: (err: unknown) => void;

  constructor(
    private readonly lease: LeaderLease,
    options: ElectorOptions
  ) {
    super();
    checkHolder(options.holder);
    checkTtl(options.ttlMs);
    this.holder = options.holder;
    this.ttlMs = options.ttlMs;
    this.onError = options.onError ?? (() => undefined);
  }

  /** The epoch of the tenure held now; undefined while not leading. */
  get epoch(): number | undefined {
    return this.current;
  }

  get isLeader(): boolean {
    return this.current !== undefined;
  }

  /** Starts contending: the first attempt runs at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Stops the loop and waits for a call in flight. A leader steps down ("lost-leadership", reason
   * "stopped") and, unless `release` is false, releases the lease so another contender takes it at once;
   * with `release: false` the tenure is left to expire, as when the process is cut off from the database.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    const epoch = this.current;
    if (epoch === undefined) return;
    this.stepDown("stopped");
    if (options.release !== false) {
      try {
        await this.lease.release(this.holder, epoch);
      } catch (err) {
        // The tenure then lapses on its own after the TTL.
        this.onError(err);
      }
    }
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.inFlight = this.tick().finally(() => {
        this.inFlight = undefined;
        this.schedule(Math.max(1, Math.floor(this.ttlMs / 3)));
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    const sentAt = performance.now();
    try {
      if (this.current === undefined) {
        const tenure = await this.lease.tryAcquire(this.holder, this.ttlMs);
        if (tenure === null) return;
        if (!this.running) {
          // stop() came while the attempt was in flight: give the tenure back rather than lead after stopping.
          await this.lease.release(this.holder, tenure.epoch);
          return;
        }
        this.current = tenure.epoch;
        this.armDeadline(sentAt);
        this.emit("became-leader", tenure.epoch);
      } else {
        const epoch = this.current;
        if (await this.lease.renew(this.holder, epoch, this.ttlMs)) {
          if (this.current === epoch) this.armDeadline(sentAt);
        } else if (this.current === epoch) {
          this.stepDown("renewal refused");
        }
      }
    } catch (err) {
      this.onError(err);
    }
  }

  /** Steps down when the tenure may have lapsed: a TTL after the last successful call was sent. */
  private armDeadline(sentAt: number): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.stepDown("renewal overdue"), Math.max(0, sentAt + this.ttlMs - performance.now()));
  }

  private stepDown(reason: LostReason): void {
    const epoch = this.current;
    clearTimeout(this.deadline);
    this.deadline = undefined;
    if (epoch === undefined) return;
    this.current = undefined;
    this.emit("lost-leadership", epoch, reason);
  }
}
