import { randomUUID } from "node:crypto";

/**
 * A UUID (version 7, RFC 9562) whose first 48 bits are the time in milliseconds, the other 74 bits random
 * (those of a random version-4 UUID, which node draws from a pooled buffer). Rows keyed by it are inserted
 * at the end of each index instead of at a random page, so a group commit writes a few pages to the WAL
 * instead of one per index per run.
 */
export function timeOrderedUuid(nowMs = Date.now()): string {
  const time = nowMs.toString(16).padStart(12, "0").slice(-12);
  // randomUUID: xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx; its version digit becomes 7, the rest is kept.
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}
