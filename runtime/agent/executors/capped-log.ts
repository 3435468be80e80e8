import { closeSync, openSync, writeSync } from "node:fs";

/**
 * A log file that keeps the first `capBytes` bytes a stream produced and then notes the truncation,
 * so a chatty stage cannot fill the agent's disk. Writes are synchronous: ordered, and complete by
 * the time the process is reported finished.
 */
export class CappedLog {
  private readonly fd: number;
  private written = 0;
  private dropped = 0;

  constructor(readonly path: string, private readonly capBytes: number) {
    this.fd = openSync(path, "w", 0o640);
  }

  /** Why the log stopped being written (a full disk, say), if it did: the stage itself goes on. */
  failure: string | undefined;

  write(chunk: Buffer): void {
    const room = this.failure ? 0 : this.capBytes - this.written;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      try {
        writeSync(this.fd, part);
        this.written += part.length;
      } catch (err) {
        this.failure = (err as Error).message;
      }
    }
    this.dropped += Math.max(0, chunk.length - Math.max(0, room));
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  close(): void {
    try {
      if (this.dropped > 0 && !this.failure) writeSync(this.fd, `\n[gpufabric: log truncated at ${this.capBytes} bytes; ${this.dropped} more bytes dropped]\n`);
    } catch (err) {
      this.failure = (err as Error).message;
    }
    closeSync(this.fd);
  }
}
