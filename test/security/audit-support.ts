import type { AuditLogFile, Clock, OpenAuditLogFile } from "../../runtime/security/audit/index.ts";

/** A clock whose timers fire only when the test advances it. */
export class FakeClock implements Clock {
  private timers: Array<{ at: number; callback: () => void; cancelled: boolean }> = [];

  constructor(private time = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, ms: number): { cancel(): void } {
    const timer = { at: this.time + ms, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Moves time forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.cancelled = true;
      this.time = due.at;
      due.callback();
    }
    this.time = until;
    this.timers = this.timers.filter((t) => !t.cancelled);
  }

  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}

/** An in-memory log file with a capacity: appends past it fail with ENOSPC, as on a full disk. */
export class FullDiskFile implements AuditLogFile {
  data = Buffer.alloc(0);
  failSync = false;

  constructor(private readonly capacity: number) {}

  readonly opener: OpenAuditLogFile = async () => this;

  async size(): Promise<number> {
    return this.data.length;
  }
  async read(position: number, length: number): Promise<Buffer> {
    return Buffer.from(this.data.subarray(position, position + length));
  }
  async truncate(length: number): Promise<void> {
    this.data = Buffer.from(this.data.subarray(0, length));
  }
  async append(bytes: Buffer): Promise<void> {
    const room = this.capacity - this.data.length;
    // A full disk takes what fits, then fails: the torn tail a real ENOSPC leaves.
    this.data = Buffer.concat([this.data, bytes.subarray(0, Math.max(0, Math.min(room, bytes.length)))]);
    if (bytes.length > room) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  }
  async sync(): Promise<void> {
    if (this.failSync) throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
  }
  async close(): Promise<void> {}
}
