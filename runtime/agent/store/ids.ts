import { randomBytes } from "node:crypto";

/**
 * A UUID (version 7, RFC 9562) whose first 48 bits are the time in milliseconds, the rest random. Rows
 * keyed by it are inserted at the end of each index instead of at a random page, so a group commit writes
 * a few pages to the WAL instead of one per index per run.
 */
export function timeOrderedUuid(nowMs = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
