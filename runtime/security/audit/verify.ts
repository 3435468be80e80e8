import canonicalize from "canonicalize";
import { createHash, type KeyObject } from "node:crypto";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { ENTRY_KEYS, GENESIS_HASH, OUTCOMES } from "./entry.ts";
import { checkpointSignatureValid, keyId, type SignedCheckpoint } from "./signing.ts";
import { readExportedCheckpoints, type ExportedCheckpoints } from "./sink.ts";
import { CHECKPOINT_ACTION, CHECKPOINT_ACTOR, SHUTDOWN_ACTION, START_ACTION } from "./actions.ts";
import { LOG_FILE } from "./paths.ts";

export interface BadEntry {
  /** The seq of the first entry that is not intact (or is missing). */
  readonly seq: number;
  /** The line of the log where it was found (1-based; 0 when the problem is outside the log). */
  readonly line: number;
  readonly reason: string;
}

export interface AuditVerifyReport {
  readonly ok: boolean;
  /** Entries read and found intact before the first bad one. */
  readonly entries: number;
  readonly lastSeq: number;
  readonly head: string;
  readonly checkpointsInLog: number;
  readonly exportedCheckpoints: number;
  readonly exportedCheckpointsMatched: number;
  /** The seq of the last checkpoint entry in the log (0 when none). */
  readonly lastCheckpointSeq: number;
  /** The highest seq an exported checkpoint covers (0 when none was given). */
  readonly latestExportedSeq: number;
  /**
   * Entries after the last checkpoint: chained, but not signed. A running agent signs them within its
   * checkpoint interval and at shutdown; after a crash they stay unsealed until it restarts. Nothing proves
   * they were not altered or that more of them once followed (see --require-sealed).
   */
  readonly unsealedEntries: number;
  /** The log ends with a shutdown entry and the checkpoint after it: its writer closed it cleanly. */
  readonly closedCleanly: boolean;
  readonly firstBad?: BadEntry;
}

export interface VerifyOptions {
  /** The key checkpoints must be signed with (Ed25519 public key). */
  readonly publicKey: KeyObject;
  /** Directory of exported checkpoints; without it, truncation of the log's tail cannot be detected. */
  readonly checkpointsDir?: string;
}

export class AuditLogMissingError extends Error {
  constructor(path: string) {
    super(`no audit log at ${path}: pass --data-dir with the agent's data directory`);
    this.name = "AuditLogMissingError";
  }
}

/** Verifies `logDir/log.jsonl` against its chain, its checkpoints and the exported checkpoints, streaming. */
export async function verifyAuditLog(logDir: string, options: VerifyOptions): Promise<AuditVerifyReport> {
  const path = join(logDir, LOG_FILE);
  try {
    await stat(path);
  } catch {
    throw new AuditLogMissingError(path);
  }
  if (options.checkpointsDir) {
    const found = await stat(options.checkpointsDir).then((s) => s.isDirectory(), () => false);
    if (!found) throw new Error(`the checkpoints directory ${options.checkpointsDir} does not exist: pass the directory the checkpoint sink exports to`);
  }
  const exported = options.checkpointsDir ? await readExportedCheckpoints(options.checkpointsDir) : { checkpoints: [], malformed: [] };
  return verifyAuditStream(readChunks(path), { publicKey: options.publicKey, exported });
}

class Bad extends Error {
  constructor(readonly bad: BadEntry) {
    super(bad.reason);
  }
}

export interface StreamVerifyOptions {
  readonly publicKey: KeyObject;
  readonly exported?: ExportedCheckpoints;
  /**
   * Where the bytes start: just after entry `seq`, whose chain hash is `head` (already checked by the caller
   * against a signed checkpoint, which then counts as the last one). Default: the start of the log.
   */
  readonly from?: { readonly seq: number; readonly head: string; /** Entry `seq` is the checkpoint of a clean close. */ readonly closedCleanly?: boolean };
}

/** Where the verifier stands in the writer's close/start protocol (see the checks in onLine). */
const enum Session {
  Open,
  ShutdownSeen,
  Closed,
  StartSeen,
}

/** The verifier over any byte source (a file stream, or a buffer in tests). */
export async function verifyAuditStream(source: AsyncIterable<Buffer> | Iterable<Buffer>, options: StreamVerifyOptions): Promise<AuditVerifyReport> {
  const expectedKeyId = keyId(options.publicKey);
  const exported = options.exported ?? { checkpoints: [], malformed: [] };
  const bySeq = new Map<number, SignedCheckpoint & { file: string }>();
  let head = options.from?.head ?? GENESIS_HASH;
  let headBytes = Buffer.from(head, "hex");
  let lastSeq = options.from?.seq ?? 0;
  // Line k holds entry k in an intact log.
  let lineNo = lastSeq;
  let checkpointsInLog = 0;
  let lastCheckpointSeq = lastSeq;
  let matched = 0;
  let session = options.from?.closedCleanly ? Session.Closed : Session.Open;
  const latestExportedSeq = exported.checkpoints.reduce((max, cp) => Math.max(max, cp.seq), 0);
  const result = (firstBad?: BadEntry): AuditVerifyReport => ({
    ok: !firstBad,
    entries: lastSeq,
    lastSeq,
    head,
    checkpointsInLog,
    exportedCheckpoints: exported.checkpoints.length + exported.malformed.length,
    exportedCheckpointsMatched: matched,
    lastCheckpointSeq,
    latestExportedSeq,
    unsealedEntries: lastSeq - lastCheckpointSeq,
    closedCleanly: session === Session.Closed,
    ...(firstBad && { firstBad }),
  });

  try {
    for (const { file, reason } of exported.malformed) throw new Bad({ seq: 0, line: 0, reason: `exported checkpoint ${file} is malformed: ${reason}` });
    for (const cp of exported.checkpoints) {
      if (cp.keyId !== expectedKeyId) throw new Bad({ seq: cp.seq, line: 0, reason: `exported checkpoint ${cp.file} was signed by key ${cp.keyId}, not by the given public key (${expectedKeyId})` });
      if (!checkpointSignatureValid(cp, options.publicKey)) throw new Bad({ seq: cp.seq, line: 0, reason: `exported checkpoint ${cp.file} has an invalid signature` });
      bySeq.set(cp.seq, cp);
    }

    const onLine = (line: Buffer): void => {
      lineNo++;
      const seq = lastSeq + 1;
      // A break found on this line may lie in an earlier entry (a prev that does not match names the entry
      // before it): report the line that entry is on, which is the one that was edited.
      const bad = (reason: string, at = seq): never => {
        throw new Bad({ seq: at, line: lineNo - (seq - at), reason });
      };
      const text = line.toString("utf8");
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return bad(`line ${lineNo} is not JSON (altered or corrupted)`);
      }
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return bad(`line ${lineNo} is not an entry object`);
      if (entry.seq !== seq) {
        if (typeof entry.seq !== "number") return bad(`line ${lineNo} has no numeric seq`);
        return bad(entry.seq < seq ? `entry ${entry.seq} appears after entry ${seq - 1}: an entry was inserted, duplicated or moved` : `entry ${seq} is missing (found ${entry.seq}): entries were deleted or moved`);
      }
      if (entry.prev !== head) return bad(seq === 1 ? "entry 1 does not start the chain (its prev is not the genesis hash)" : `entry ${seq}'s prev does not match the hash of entry ${seq - 1}: entry ${seq - 1} was altered (or entry ${seq}'s link to it)`, Math.max(1, seq - 1));
      if (Object.keys(entry).length !== ENTRY_KEYS.length || ENTRY_KEYS.some((k) => !Object.hasOwn(entry, k))) {
        return bad(`entry ${seq} has fields ${Object.keys(entry).sort().join(", ")}; an entry has exactly ${ENTRY_KEYS.join(", ")}`);
      }
      if (!OUTCOMES.includes(entry.outcome as (typeof OUTCOMES)[number])) return bad(`entry ${seq} has an unknown outcome`);
      session = nextSession(session, entry, seq, bad);
      if (entry.action === CHECKPOINT_ACTION) {
        // A checkpoint line may be the log's last, with nothing after it to chain its bytes: its bytes must be exactly
        // the canonical form of what was signed. Other entries' bytes are pinned by the next entry's prev.
        if (canonicalize(entry) !== text) bad(`checkpoint entry ${seq} is not in canonical form (altered)`);
        checkLogCheckpoint(entry, seq, head, options.publicKey, expectedKeyId, bad);
        checkpointsInLog++;
      }
      headBytes = createHash("sha256").update(headBytes).update(line).digest();
      head = headBytes.toString("hex");
      lastSeq = seq;
      if (entry.action === CHECKPOINT_ACTION) lastCheckpointSeq = seq;
      const cp = bySeq.get(seq);
      if (cp) {
        if (cp.hash !== head) bad(`entry ${seq} (or one before it) differs from what exported checkpoint ${cp.file} signed`);
        matched++;
      }
    };

    let leftover: Buffer | undefined;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      let start = 0;
      let newline = chunk.indexOf(0x0a);
      if (leftover) {
        if (newline === -1) {
          leftover = Buffer.concat([leftover, chunk]);
          continue;
        }
        onLine(Buffer.concat([leftover, chunk.subarray(0, newline)]));
        leftover = undefined;
        start = newline + 1;
        newline = chunk.indexOf(0x0a, start);
      }
      for (; newline !== -1; newline = chunk.indexOf(0x0a, start)) {
        onLine(chunk.subarray(start, newline));
        start = newline + 1;
      }
      if (start < chunk.length) leftover = Buffer.from(chunk.subarray(start));
    }
    if (leftover && leftover.length > 0) throw new Bad({ seq: lastSeq + 1, line: lineNo + 1, reason: `the last line (entry ${lastSeq + 1}) is incomplete: the log was cut mid-entry` });
    // The latest exported checkpoint says how far the log reached: name all that was removed, not the first gap.
    const beyond = exported.checkpoints.reduce<(typeof exported.checkpoints)[number] | undefined>((latest, cp) => (cp.seq > lastSeq && cp.seq > (latest?.seq ?? 0) ? cp : latest), undefined);
    if (beyond) throw new Bad({ seq: lastSeq + 1, line: lineNo + 1, reason: `the log ends at entry ${lastSeq} but checkpoint ${beyond.file} was exported at entry ${beyond.seq}: entries ${lastSeq + 1}..${beyond.seq} were removed (truncated)` });
    return result();
  } catch (err) {
    if (err instanceof Bad) return result(err.bad);
    throw err;
  }
}

/** The file's bytes in 1 MiB reads; nothing is opened until the verifier starts reading. Lines are consumed before the next read. */
async function* readChunks(path: string): AsyncGenerator<Buffer> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/**
 * A clean close writes a shutdown entry and a checkpoint; the next open continues with a start record and a
 * checkpoint. Only a writer can sign that checkpoint, so entries appended to a closed log while no writer ran
 * (which a restart would otherwise take for a crashed session's unsealed tail) show here.
 */
function nextSession(session: Session, entry: Record<string, unknown>, seq: number, bad: (reason: string) => never): Session {
  const own = entry.actor === CHECKPOINT_ACTOR ? entry.action : undefined;
  switch (session) {
    case Session.Closed: {
      // The start record names the checkpoint it continues from and holds nothing else (a forged one can say nothing).
      const data = entry.data as Record<string, unknown> | null;
      const startRecord = own === START_ACTION && data !== null && typeof data === "object" && data.after === seq - 1 && Object.keys(data).length === 1;
      if (!startRecord) bad(`entry ${seq} follows the checkpoint that sealed a clean shutdown (entry ${seq - 1}) but is not a new session's start record: it was added while no writer ran`);
      return Session.StartSeen;
    }
    case Session.StartSeen:
      if (own !== CHECKPOINT_ACTION) bad(`entry ${seq} follows a start record but is not the checkpoint that seals it: it was added while no writer ran`);
      return Session.Open;
    case Session.ShutdownSeen:
      return own === CHECKPOINT_ACTION ? Session.Closed : own === SHUTDOWN_ACTION ? Session.ShutdownSeen : Session.Open;
    default:
      return own === SHUTDOWN_ACTION ? Session.ShutdownSeen : Session.Open;
  }
}

/** Every field of a checkpoint entry is fixed, signed, or derived from the chain: a change to any byte shows. */
function checkLogCheckpoint(entry: Record<string, unknown>, seq: number, head: string, publicKey: KeyObject, expectedKeyId: string, bad: (reason: string) => never): void {
  if (entry.actor !== CHECKPOINT_ACTOR || entry.tenant !== null || entry.object !== null || entry.source !== null || entry.outcome !== "success") bad(`checkpoint entry ${seq} has altered fields`);
  const data = entry.data as { checkpoint?: { seq?: unknown; hash?: unknown; time?: unknown }; keyId?: unknown; signature?: unknown } | null;
  const claim = data?.checkpoint;
  if (!claim || typeof data.signature !== "string" || typeof data.keyId !== "string" || Object.keys(data).length !== 3 || Object.keys(claim).length !== 3) bad(`checkpoint entry ${seq} is malformed`);
  if (claim!.seq !== seq - 1 || claim!.hash !== head) bad(`checkpoint entry ${seq} does not cover entry ${seq - 1} as the chain has it`);
  if (claim!.time !== entry.time || typeof claim!.time !== "string") bad(`checkpoint entry ${seq}'s time differs from the time it signed`);
  if (data!.keyId !== expectedKeyId) bad(`checkpoint entry ${seq} was signed by key ${String(data!.keyId)}, not by the given public key (${expectedKeyId})`);
  const signed = { seq: seq - 1, hash: head, time: claim!.time as string, keyId: expectedKeyId, signature: data!.signature as string };
  if (!checkpointSignatureValid(signed, publicKey)) bad(`checkpoint entry ${seq} has an invalid signature`);
}
