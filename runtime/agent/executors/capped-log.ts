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

  constructor(
    readonly path: string,
    private readonly capBytes: number,
  ) {
    this.fd = openSync(path, "w", 0o640);
  }

  write(chunk: Buffer): void {
    const room = this.capBytes - this.written;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      writeSync(this.fd, part);
      this.written += part.length;
    }
    this.dropped += Math.max(0, chunk.length - Math.max(0, room));
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  close(): void {
    if (this.dropped > 0) writeSync(this.fd, `\n[gpufabric: log truncated at ${this.capBytes} bytes; ${this.dropped} more bytes dropped]\n`);
    closeSync(this.fd);
  }
}
