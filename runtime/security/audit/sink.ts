import canonicalize from "canonicalize";
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { formatPath } from "../../config/errors.ts";
import type { SignedCheckpoint } from "./signing.ts";

/** Where signed checkpoints are exported, out of reach of whoever could rewrite the log (a volume, a bucket, a WORM store). */
export interface CheckpointSink {
  /**
   * Resolves once the checkpoint is durable in the sink; rejects otherwise. A sink never replaces a different
   * checkpoint already exported for the same entry: that would let a rolled-back log overwrite the evidence.
   */
  export(checkpoint: SignedCheckpoint): Promise<void>;
  /** The exported checkpoint with the highest seq (undefined when none); the writer checks the log against it at open. */
  latest(): Promise<SignedCheckpoint | undefined>;
}

/** The sink holds something the log contradicts, or a checkpoint that cannot be read: nothing may be signed over it. */
export class CheckpointSinkConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointSinkConflictError";
  }
}

const FILE_PATTERN = /^checkpoint-(\d{12})\.json$/;

export function checkpointFileName(seq: number): string {
  return `checkpoint-${String(seq).padStart(12, "0")}.json`;
}

/**
 * One file per checkpoint in a directory, each written to a temporary name, fsynced, then linked to its final
 * name (which fails if that name exists, so an exported checkpoint is never replaced), then the directory fsynced.
 */
export class DirectoryCheckpointSink implements CheckpointSink {
  constructor(readonly dir: string) {}

  async export(checkpoint: SignedCheckpoint): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const target = join(this.dir, checkpointFileName(checkpoint.seq));
    const tmp = join(this.dir, `.${checkpointFileName(checkpoint.seq)}.tmp-${randomBytes(4).toString("hex")}`);
    const text = `${canonicalize(checkpoint)}\n`;
    try {
      const handle = await open(tmp, "wx", 0o644);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await publishOnce(tmp, target, text);
      const dir = await open(this.dir, "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async latest(): Promise<SignedCheckpoint | undefined> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    // Zero-padded seqs: the greatest name is the latest checkpoint.
    const name = names.filter((n) => FILE_PATTERN.test(n)).sort().at(-1);
    if (name === undefined) return undefined;
    const read = await readCheckpointFile(join(this.dir, name), Number(FILE_PATTERN.exec(name)![1]));
    if ("reason" in read) throw new CheckpointSinkConflictError(`the latest exported checkpoint ${read.file} is malformed: ${read.reason}`);
    return read;
  }
}

/** Links `tmp` to `target` unless `target` exists; an identical existing copy is accepted (an export retried). */
async function publishOnce(tmp: string, target: string, text: string): Promise<void> {
  try {
    await link(tmp, target);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") {
      // A filesystem without hard links: check, then rename (one writer per log, so nothing races the check).
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "ENOSYS" && code !== "EOPNOTSUPP") throw err;
      const existing = await readFile(target, "utf8").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : Promise.reject(e)));
      if (existing === undefined) return rename(tmp, target);
      if (existing !== text) throw conflict(target);
      return;
    }
  }
  if ((await readFile(target, "utf8")) !== text) throw conflict(target);
}

function conflict(target: string): CheckpointSinkConflictError {
  return new CheckpointSinkConflictError(
    `the checkpoint sink already holds a different checkpoint ${target} for the same entry: the log was rolled back or replaced since it was exported; run 'gpufabric audit verify --checkpoints' with the sink's directory`
  );
}

const SignedCheckpointSchema = z
  .object({
    seq: z.number().int().positive(),
    hash: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
    time: z.string().min(1),
    keyId: z.string().min(1),
    signature: z.string().min(1),
  })
  .strict();

export interface ExportedCheckpoints {
  readonly checkpoints: ReadonlyArray<SignedCheckpoint & { readonly file: string }>;
  /** Files in the directory that are not well-formed checkpoints. */
  readonly malformed: ReadonlyArray<{ readonly file: string; readonly reason: string }>;
}

/** Reads every exported checkpoint in `dir`, ascending by seq. */
export async function readExportedCheckpoints(dir: string): Promise<ExportedCheckpoints> {
  const checkpoints: Array<SignedCheckpoint & { file: string }> = [];
  const malformed: Array<{ file: string; reason: string }> = [];
  for (const name of (await readdir(dir)).sort()) {
    const match = FILE_PATTERN.exec(name);
    if (!match) continue;
    const read = await readCheckpointFile(join(dir, name), Number(match[1]));
    if ("reason" in read) malformed.push(read);
    else checkpoints.push(read);
  }
  return { checkpoints, malformed };
}

async function readCheckpointFile(file: string, seqInName: number): Promise<(SignedCheckpoint & { file: string }) | { file: string; reason: string }> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    return { file, reason: `not JSON (${(err as Error).message})` };
  }
  const parsed = SignedCheckpointSchema.safeParse(doc);
  if (!parsed.success) return { file, reason: parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join("; ") };
  if (parsed.data.seq !== seqInName) return { file, reason: `names seq ${parsed.data.seq} but the file name says ${seqInName}` };
  return { ...parsed.data, file };
}
