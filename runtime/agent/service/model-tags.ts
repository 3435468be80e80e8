/**
 * What the store keeps of a stage's model: an opaque stand-in. A model name comes from the submitted
 * document (a ComfyUI prompt's `ckpt_name`, a native stage's `resources.model`), which is sealed; the
 * store and the audit log get a keyed hash of it instead, so equal models still compare equal (the
 * scheduler's model affinity) while the name itself cannot be read back or guessed from a list of
 * well-known checkpoints without the key.
 *
 * The key is 32 random bytes, sealed with the keyring in `DATA_DIR/model-tags.key` (the key rotation
 * follower rewraps it with everything else). The loop restores real names from the opened document when
 * it recovers a run (restoreStageRuns); a name it cannot find there keeps its stand-in, which still
 * matches the stand-ins of the same model.
 */
import { createHmac, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { link, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { readDecryptedFileToBuffer, writeEncryptedFile, type KeyProvider, type ObjectContext } from "../../security/crypto/index.ts";

/** Every stand-in starts with this; no model file name a document can hold does (it is not a file name). */
export const MODEL_TAG_PREFIX = "sealed-model:";
export const MODEL_TAGS_KEY_FILE = "model-tags.key";
/** The sealed key's context: it belongs to the agent, not to a tenant's run. */
export const MODEL_TAGS_KEY_CONTEXT: ObjectContext = { tenant: "gpufabric-agent", run: "agent", objectId: MODEL_TAGS_KEY_FILE };

export class ModelTags {
  constructor(private readonly key: Buffer) {}

  /** The stand-in of a model name (a stand-in is returned as it is). */
  tag(model: string): string {
    if (isModelTag(model)) return model;
    return MODEL_TAG_PREFIX + createHmac("sha256", this.key).update(model, "utf8").digest("hex").slice(0, 32);
  }
}

export function isModelTag(model: string): boolean {
  return model.startsWith(MODEL_TAG_PREFIX);
}

/**
 * Opens the sealed key in the data directory, making it on first start. A key that no longer opens (its
 * key version was removed by hand) is replaced, with a warning: stored stand-ins then stay opaque and only
 * names restored from the documents match new submissions.
 */
export async function openModelTags(keys: KeyProvider, dataDir: string, logger: Logger): Promise<ModelTags> {
  const file = join(dataDir, MODEL_TAGS_KEY_FILE);
  if (existsSync(file)) {
    try {
      const key = await readDecryptedFileToBuffer(keys, MODEL_TAGS_KEY_CONTEXT, file);
      if (key.length === 32) return new ModelTags(key);
      logger.warn({ file, bytes: key.length }, "the model stand-in key has the wrong length: a new one is made");
    } catch (err) {
      logger.warn({ err, file }, "the model stand-in key could not be opened: a new one is made (stand-ins stored before no longer match)");
    }
  }
  const key = randomBytes(32);
  // Made aside and linked into place, which fails when the file exists: the control planes of a cluster
  // share the key (in the shared storage), and of two starting together the second uses the first's.
  const aside = `${file}.${randomBytes(6).toString("hex")}.new`;
  await writeEncryptedFile(keys, MODEL_TAGS_KEY_CONTEXT, [key], aside);
  try {
    if (existsSync(file)) await rename(aside, file);
    else await link(aside, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const theirs = await readDecryptedFileToBuffer(keys, MODEL_TAGS_KEY_CONTEXT, file);
    return new ModelTags(theirs);
  } finally {
    await rm(aside, { force: true });
  }
  return new ModelTags(key);
}
