import { writeSync } from "node:fs";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";

/** The few file operations the audit log needs; a fake stands in for a full or failing disk in tests. */
export interface AuditLogFile {
  size(): Promise<number>;
  read(position: number, length: number): Promise<Buffer>;
  truncate(length: number): Promise<void>;
  /** Appends all of `data` at the end of the file. */
  append(data: Buffer): Promise<void>;
  /** Makes everything appended so far durable (fdatasync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export type OpenAuditLogFile = (path: string) => Promise<AuditLogFile>;

/** The log file on a real filesystem, opened for appending (O_APPEND) and reading; created 0600. */
export const openNodeLogFile: OpenAuditLogFile = async (path) => {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const handle: FileHandle = await open(path, "a+", 0o600);
  return {
    size: async () => (await handle.stat()).size,
    read: async (position, length) => {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      return buffer.subarray(0, bytesRead);
    },
    truncate: (length) => handle.truncate(length),
    // A synchronous write only copies a batch (a few KiB) into the page cache; a thread-pool round trip
    // for it would cost more than the copy, and cost it on every group commit. The sync stays asynchronous.
    append: async (data) => {
      let offset = 0;
      while (offset < data.length) offset += writeSync(handle.fd, data, offset, data.length - offset);
    },
    sync: () => handle.datasync(),
    close: () => handle.close(),
  };
};
