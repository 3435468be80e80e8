import type { KeyObject } from "node:crypto";
import { CHECKPOINT_ACTION, CHECKPOINT_ACTOR, SHUTDOWN_ACTION } from "./actions.ts";
import { chainHash, GENESIS_HASH } from "./entry.ts";
import type { AuditLogFile } from "./log-file.ts";
import { checkpointSignatureValid, keyId, type SignedCheckpoint } from "./signing.ts";
import { checkpointFileName } from "./sink.ts";
import { verifyAuditStream, type AuditVerifyReport } from "./verify.ts";

/** Where the log stands once its tail has been verified at open. */
export interface VerifiedTail {
  /** The last entry's seq and chain hash: appends continue from here. */
  readonly seq: number;
  readonly head: string;
  /** The last checkpoint entry in the log, or the latest exported checkpoint when that is later (0: none). */
  readonly lastCheckpointSeq: number;
  /** Entries after lastCheckpointSeq: chained, never signed (a crash came before their checkpoint). */
  readonly unsealed: number;
  /** The entry the sink's latest checkpoint covers (0: the sink holds none). */
  readonly latestExportedSeq: number;
  /** The log ends with a shutdown entry and its checkpoint: its writer closed it cleanly. */
  readonly endsWithShutdown: boolean;
}

/** The log contradicts its chain or the exported checkpoints: the writer must not sign anything over it. */
export class AuditTailError extends Error {
  constructor(reason: string, latestExportedSeq: number) {
    super(
      `refusing to open the audit log: ${reason}. Nothing is signed over a log that does not verify: find the first bad entry with 'gpufabric audit verify --checkpoints <the sink's directory>'` +
        (latestExportedSeq > 0 ? ` and restore log.jsonl from a copy that reaches entry ${latestExportedSeq} intact` : " and restore log.jsonl from an intact copy")
    );
    this.name = "AuditTailError";
  }
}

const READ_CHUNK = 64 * 1024;

/**
 * Verifies the log's bytes [0, end) before the writer continues (and signs) them. The sink's latest exported
 * checkpoint is the anchor: the entry it covers must be in the log with the hash it signed, and every entry
 * after it must chain to it (checkpoint entries among them correctly signed). Only that tail is read: what
 * the anchor covers is pinned by its hash, and `gpufabric audit verify` checks all of it. Without an exported
 * checkpoint the whole log is verified from its first entry.
 */
export async function verifyTailAtOpen(file: AuditLogFile, end: number, options: { readonly publicKey: KeyObject; readonly latest: SignedCheckpoint | undefined }): Promise<VerifiedTail> {
  const { publicKey, latest } = options;
  const anchor = latest?.seq ?? 0;
  const refuse = (reason: string) => new AuditTailError(reason, anchor);
  if (latest) {
    const expected = keyId(publicKey);
    if (latest.keyId !== expected) throw refuse(`the latest exported checkpoint (${checkpointFileName(latest.seq)}) was signed by key ${latest.keyId}, not by this writer's signing key (${expected}); mount the signing key this log was written with`);
    if (!checkpointSignatureValid(latest, publicKey)) throw refuse(`the latest exported checkpoint (${checkpointFileName(latest.seq)}) has an invalid signature`);
  }
  if (end === 0) {
    if (latest) throw refuse(`the log is empty but checkpoint ${checkpointFileName(latest.seq)} was exported at entry ${latest.seq}: entries 1..${latest.seq} were removed`);
    return { seq: 0, head: GENESIS_HASH, lastCheckpointSeq: 0, unsealed: 0, latestExportedSeq: 0, endsWithShutdown: false };
  }
  let report: AuditVerifyReport;
  const found = latest ? await findEntryBackwards(file, end, latest.seq) : undefined;
  if (latest && found && "line" in found) {
    const head = headOf(found.line);
    if (head !== latest.hash) throw refuse(`entry ${latest.seq} (or one before it) differs from what exported checkpoint ${checkpointFileName(latest.seq)} signed: the log was altered or replaced`);
    // After a clean close only a new session may continue the log (the stream checks its signed start record).
    const closedCleanly = closesCleanly(found.before, found.line);
    report = await verifyAuditStream(chunks(file, found.next, end), { publicKey, from: { seq: latest.seq, head, closedCleanly } });
  } else if (latest && found && "lastSeq" in found && found.lastSeq !== undefined && found.lastSeq < latest.seq) {
    throw refuse(`the log ends at entry ${found.lastSeq} but checkpoint ${checkpointFileName(latest.seq)} was exported at entry ${latest.seq}: entries ${found.lastSeq + 1}..${latest.seq} were removed (truncated)`);
  } else {
    // No anchor, or the lines near the end are not what an intact log holds: the full verifier names the first bad entry.
    const exported = latest ? { checkpoints: [{ ...latest, file: checkpointFileName(latest.seq) }], malformed: [] } : undefined;
    report = await verifyAuditStream(chunks(file, 0, end), { publicKey, ...(exported && { exported }) });
  }
  if (!report.ok) {
    const bad = report.firstBad!;
    throw refuse(`first bad entry seq ${bad.seq}${bad.line ? ` (line ${bad.line})` : ""}: ${bad.reason}`);
  }
  return { seq: report.lastSeq, head: report.head, lastCheckpointSeq: report.lastCheckpointSeq, unsealed: report.unsealedEntries, latestExportedSeq: anchor, endsWithShutdown: report.closedCleanly };
}

type Parsed = { readonly action?: unknown; readonly actor?: unknown; readonly prev?: unknown; readonly seq?: unknown };

function parse(line: Buffer | undefined): Parsed | undefined {
  if (!line) return undefined;
  try {
    const entry = JSON.parse(line.toString("utf8")) as unknown;
    return typeof entry === "object" && entry !== null ? (entry as Parsed) : undefined;
  } catch {
    return undefined;
  }
}

/** The chain hash of one line, from the prev it names (the caller compares it with a signed hash). */
function headOf(line: Buffer): string | undefined {
  const prev = parse(line)?.prev;
  return typeof prev === "string" && /^[0-9a-f]{64}$/.test(prev) ? chainHash(prev, line) : undefined;
}

function seqOf(line: Buffer): number | undefined {
  const seq = parse(line)?.seq;
  return typeof seq === "number" && Number.isSafeInteger(seq) ? seq : undefined;
}

/** The action of an entry the log wrote about itself; undefined for anything else. */
function actionOf(line: Buffer | undefined): unknown {
  const entry = parse(line);
  return entry?.actor === CHECKPOINT_ACTOR ? entry.action : undefined;
}

/** `checkpoint` is a checkpoint entry right after a shutdown entry that chains into it. */
function closesCleanly(shutdown: Buffer | undefined, checkpoint: Buffer): boolean {
  if (actionOf(shutdown) !== SHUTDOWN_ACTION || actionOf(checkpoint) !== CHECKPOINT_ACTION) return false;
  return headOf(shutdown!) === parse(checkpoint)!.prev;
}

type Found = { readonly line: Buffer; readonly next: number; readonly before: Buffer | undefined } | { readonly lastSeq: number | undefined };

/**
 * Walks the lines of [0, end) from the last one back until one holds `seq`; reads only as far back as that.
 * Stops (not found) at a line that does not parse or whose seq is already below `seq`. `lastSeq` is the last line's.
 */
async function findEntryBackwards(file: AuditLogFile, end: number, seq: number): Promise<Found> {
  let buf = Buffer.alloc(0);
  let bufStart = end; // buf holds the bytes [bufStart, end)
  let lineEnd = end - 1; // the newline that ends the current line
  let lastSeq: number | undefined;
  for (let first = true; ; first = false) {
    let nl = lineEnd > bufStart ? buf.lastIndexOf(0x0a, lineEnd - bufStart - 1) : -1;
    while (nl === -1 && bufStart > 0) {
      // Doubling reads keep the copying linear in the distance walked.
      const size = Math.min(bufStart, Math.max(READ_CHUNK, buf.length));
      buf = Buffer.concat([await file.read(bufStart - size, size), buf]);
      bufStart -= size;
      nl = lineEnd > bufStart ? buf.lastIndexOf(0x0a, lineEnd - bufStart - 1) : -1;
    }
    const lineStart = nl === -1 ? bufStart : bufStart + nl + 1;
    const line = buf.subarray(lineStart - bufStart, lineEnd - bufStart);
    const at = seqOf(line);
    if (first) lastSeq = at;
    if (at === seq) return { line, next: lineEnd + 1, before: await lineBefore(file, lineStart) };
    if (at === undefined || at < seq || lineStart === 0) return { lastSeq };
    lineEnd = lineStart - 1;
  }
}

/** The line that ends just before `lineStart` (undefined at the start of the log, or for one longer than any entry). */
async function lineBefore(file: AuditLogFile, lineStart: number): Promise<Buffer | undefined> {
  if (lineStart === 0) return undefined;
  const start = Math.max(0, lineStart - 1 - 70 * 1024);
  const window = await file.read(start, lineStart - 1 - start);
  const nl = window.lastIndexOf(0x0a);
  return nl === -1 && start > 0 ? undefined : window.subarray(nl + 1);
}

/** The bytes [start, end) of the log in 1 MiB reads. */
async function* chunks(file: AuditLogFile, start: number, end: number): AsyncGenerator<Buffer> {
  for (let position = start; position < end; ) {
    const bytes = await file.read(position, Math.min(1 << 20, end - position));
    if (bytes.length === 0) return;
    position += bytes.length;
    yield bytes;
  }
}
