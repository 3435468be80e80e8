import canonicalize from "canonicalize";
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { formatPath } from "../../config/errors.ts";
import type { SignedCheckpoint } from "./signing.ts";

/** Where signed checkpoints are exported, out of reach of whoever could rewrite the log (a volume, a bucket, a WORM store). */
export interface CheckpointSink {
  /** Resolves once the checkpoint is durable in the sink; rejects otherwise. */
  export(checkpoint: SignedCheckpoint): Promise<void>;
}

const FILE_PATTERN = /^checkpoint-(\d{12})\.json$/;

export function checkpointFileName(seq: number): string {
  return `checkpoint-${String(seq).padStart(12, "0")}.json`;
}

/** One file per checkpoint in a directory, each written to a temporary name, fsynced, then renamed. */
export class DirectoryCheckpointSink implements CheckpointSink {
  constructor(readonly dir: string) {}

  async export(checkpoint: SignedCheckpoint): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const target = join(this.dir, checkpointFileName(checkpoint.seq));
    const tmp = join(this.dir, `.${checkpointFileName(checkpoint.seq)}.tmp-${randomBytes(4).toString("hex")}`);
    try {
      const handle = await open(tmp, "wx", 0o644);
      try {
        await handle.writeFile(`${canonicalize(checkpoint)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, target);
      const dir = await open(this.dir, "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
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
    const file = join(dir, name);
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(file, "utf8"));
    } catch (err) {
      malformed.push({ file, reason: `not JSON (${(err as Error).message})` });
      continue;
    }
    const parsed = SignedCheckpointSchema.safeParse(doc);
    if (!parsed.success) {
      malformed.push({ file, reason: parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join("; ") });
    } else if (parsed.data.seq !== Number(match[1])) {
      malformed.push({ file, reason: `names seq ${parsed.data.seq} but the file name says ${Number(match[1])}` });
    } else {
      checkpoints.push({ ...parsed.data, file });
    }
  }
  return { checkpoints, malformed };
}
