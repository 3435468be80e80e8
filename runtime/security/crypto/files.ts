import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ObjectContext } from "./context.ts";
import { rewrapHead } from "./envelope.ts";
import { decodeKeyPrefix, FIXED_PREFIX_BYTES, MAGIC } from "./header.ts";
import { DecryptionError, type KeyProvider } from "./key-provider.ts";
import { createDecryptStream, createEncryptStream, type EncryptStreamOptions } from "./stream.ts";

/** Largest key prefix a header can have (fixed fields plus a 64 KiB wrapped key). */
const MAX_PREFIX_BYTES = FIXED_PREFIX_BYTES + 0xffff;

/**
 * Encrypts `source` into `path` (0600): written to a temporary file, fsynced, then renamed, so a reader
 * never sees half an artifact and no plaintext ever reaches the disk.
 */
export async function writeEncryptedFile(provider: KeyProvider, context: ObjectContext, source: Readable | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, path: string, options: EncryptStreamOptions = {}): Promise<void> {
  const encryptor = await createEncryptStream(provider, context, options);
  await writeAtomically(path, async (tmp) => {
    await pipeline(source, encryptor, createWriteStream(tmp, { flags: "wx", mode: 0o600 }));
  });
}

/** A readable of the plaintext of an encrypted file; it errors (after releasing only authenticated chunks) on any tampering. */
export function readDecryptedFile(provider: KeyProvider, context: ObjectContext, path: string): Readable {
  const decryptor = createDecryptStream(provider, context);
  // pipeline closes the file on any error; the error itself reaches whoever reads the decryptor.
  pipeline(createReadStream(path), decryptor).catch(() => undefined);
  return decryptor;
}

/** The whole plaintext of an encrypted file, for small artifacts and tests. */
export async function readDecryptedFileToBuffer(provider: KeyProvider, context: ObjectContext, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of readDecryptedFile(provider, context, path)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** The key version of an encrypted file, from its header; undefined for a file that does not start with an envelope header. */
export async function fileKeyVersion(path: string): Promise<number | undefined> {
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(FIXED_PREFIX_BYTES);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.subarray(0, MAGIC.length).equals(MAGIC) ? head.readUInt32BE(6) : undefined;
  } finally {
    await handle.close();
  }
}

/**
 * Rewraps an encrypted file's data key under the provider's current version. Only the header changes: the
 * encrypted body is copied byte for byte (never decrypted) into a temporary file that replaces the original.
 * Returns false when the file already uses the current version.
 */
export async function rewrapFile(provider: KeyProvider, context: ObjectContext, path: string): Promise<boolean> {
  const handle = await open(path, "r");
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(MAX_PREFIX_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const prefix = decodeKeyPrefix(head);
  if (!prefix) throw new DecryptionError(`${path} is truncated: it does not hold an envelope header`);
  const { newPrefix, oldPrefixLength, changed } = await rewrapHead(provider, head, context);
  if (!changed) return false;
  await writeAtomically(path, async (tmp) => {
    const out = createWriteStream(tmp, { flags: "wx", mode: 0o600 });
    out.write(newPrefix);
    await pipeline(createReadStream(path, { start: oldPrefixLength }), out);
  });
  return true;
}

async function writeAtomically(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await write(tmp);
    const handle = await open(tmp, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
