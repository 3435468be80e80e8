/**
 * What the admin page shows of the agent's audit log: a tenant's own entries (newest first, paged by seq),
 * the log's last checkpoint, and whether the whole chain verifies against its signed checkpoints.
 *
 * The log is read as it lies on disk while the agent appends to it: only whole lines count (a batch being
 * written may end in a partial one), and a verification that fails is tried once more a moment later, so
 * that a checkpoint exported while its batch was being read is not taken for a truncation. Tampering stays.
 */
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { KeyObject } from "node:crypto";
import { CHECKPOINT_ACTION, LOG_FILE, readExportedCheckpoints, verifyAuditStream, type AuditEntry } from "../../security/audit/index.ts";

export interface AuditPage {
  readonly entries: AuditEntry[];
  /** Pass as `before` for the next (older) page; null when there is none. */
  readonly nextBefore: number | null;
  readonly lastCheckpoint: { readonly seq: number; readonly time: string; readonly covers: number; readonly keyId: string | null } | null;
}

export interface AuditVerifyStatus {
  readonly ok: boolean;
  /** Entries found intact. */
  readonly checked: number;
  readonly problem: string | null;
}

/** Bytes of the log up to its last complete line. */
async function completeLength(path: string): Promise<number> {
  const { size } = await stat(path);
  if (size === 0) return 0;
  const handle = await open(path, "r");
  try {
    const window = Math.min(size, 256 * 1024);
    const buffer = Buffer.alloc(window);
    await handle.read(buffer, 0, window, size - window);
    const last = buffer.lastIndexOf(0x0a);
    return last < 0 ? 0 : size - window + last + 1;
  } finally {
    await handle.close();
  }
}

/** The tenant's entries with seq < before (all when null), newest first, at most `limit`. */
export async function readAuditPage(logDir: string, tenant: string, limit: number, before: number | null): Promise<AuditPage> {
  const path = join(logDir, LOG_FILE);
  const end = await completeLength(path);
  const kept: AuditEntry[] = [];
  let more = false;
  let lastCheckpoint: AuditPage["lastCheckpoint"] = null;
  if (end > 0) {
    const lines = createInterface({ input: createReadStream(path, { start: 0, end: end - 1 }), crlfDelay: Infinity });
    for await (const line of lines) {
      let entry: AuditEntry;
      try {
        entry = JSON.parse(line) as AuditEntry;
      } catch {
        continue; // an unreadable line: the verification reports it
      }
      if (entry.action === CHECKPOINT_ACTION) {
        const data = entry.data as { checkpoint?: { seq?: number }; keyId?: string };
        lastCheckpoint = { seq: entry.seq, time: entry.time, covers: data.checkpoint?.seq ?? entry.seq - 1, keyId: data.keyId ?? null };
      }
      // Only the caller's tenant: the agent's own entries (tenant null) and other tenants' are never shown.
      if (entry.tenant !== tenant || (before !== null && entry.seq >= before)) continue;
      kept.push(entry);
      if (kept.length > limit) {
        kept.shift();
        more = true;
      }
    }
  }
  kept.reverse();
  return { entries: kept, nextBefore: more && kept.length > 0 ? kept[kept.length - 1]!.seq : null, lastCheckpoint };
}

async function* chunks(path: string, end: number): AsyncGenerator<Buffer> {
  const handle = await open(path, "r");
  try {
    let position = 0;
    while (position < end) {
      const buffer = Buffer.allocUnsafe(Math.min(1 << 20, end - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

async function verifyOnce(logDir: string, publicKey: KeyObject, checkpointsDir: string | undefined): Promise<AuditVerifyStatus> {
  const path = join(logDir, LOG_FILE);
  const end = await completeLength(path);
  const exported = checkpointsDir ? await readExportedCheckpoints(checkpointsDir) : undefined;
  const report = await verifyAuditStream(chunks(path, end), { publicKey, ...(exported && { exported }) });
  return { ok: report.ok, checked: report.entries, problem: report.firstBad ? `line ${report.firstBad.line} (seq ${report.firstBad.seq}): ${report.firstBad.reason}` : null };
}

/** The chain against the signed checkpoints in the log and, where given, those exported to the sink. */
export async function verifyAuditChain(logDir: string, publicKey: KeyObject, checkpointsDir: string | undefined): Promise<AuditVerifyStatus> {
  const first = await verifyOnce(logDir, publicKey, checkpointsDir);
  if (first.ok) return first;
  await new Promise((r) => setTimeout(r, 200));
  return verifyOnce(logDir, publicKey, checkpointsDir);
}
