import { createCipheriv, createDecipheriv } from "node:crypto";
import { objectContext, payloadAad, wrapAad, type ObjectContext } from "./context.ts";
import { decodeKeyPrefix, encodeKeyPrefix, IV_BYTES, TAG_BYTES, type KeyPrefix } from "./header.ts";
import { DecryptionError, type KeyProvider } from "./key-provider.ts";
import { randomBytesPooled } from "./random.ts";

export const DATA_KEY_BYTES = 32;

/** A fresh data key, wrapped under the provider's current version and bound to the object. */
export interface WrappedDataKey {
  readonly dataKey: Buffer;
  readonly keyVersion: number;
  readonly wrappedKey: Uint8Array;
}

export async function newDataKey(provider: KeyProvider, context: ObjectContext): Promise<WrappedDataKey> {
  const keyVersion = await provider.currentVersion();
  const dataKey = randomBytesPooled(DATA_KEY_BYTES);
  const wrappedKey = await provider.wrap(dataKey, keyVersion, wrapAad(context, keyVersion));
  return { dataKey, keyVersion, wrappedKey };
}

export async function unwrapDataKey(provider: KeyProvider, prefix: KeyPrefix, context: ObjectContext): Promise<Buffer> {
  const dataKey = Buffer.from(await provider.unwrap(prefix.wrappedKey, prefix.keyVersion, wrapAad(context, prefix.keyVersion)));
  if (dataKey.length !== DATA_KEY_BYTES) throw new DecryptionError(`the unwrapped data key is ${dataKey.length} bytes, not ${DATA_KEY_BYTES}`);
  return dataKey;
}

/**
 * Small values (database fields: workflow inputs, prompts): one AES-256-GCM message under a fresh data key.
 * The whole envelope is returned as bytes to store in a BLOB column.
 */
export async function sealValue(provider: KeyProvider, plaintext: Uint8Array, context: ObjectContext): Promise<Buffer> {
  const ctx = objectContext(context);
  const { dataKey, keyVersion, wrappedKey } = await newDataKey(provider, ctx);
  const iv = randomBytesPooled(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", dataKey, iv);
  cipher.setAAD(payloadAad(ctx));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([encodeKeyPrefix("value", keyVersion, wrappedKey), iv, cipher.getAuthTag(), body]);
}

export async function openValue(provider: KeyProvider, envelope: Uint8Array, context: ObjectContext): Promise<Buffer> {
  const ctx = objectContext(context);
  const bytes = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
  const prefix = decodeKeyPrefix(bytes);
  if (!prefix || bytes.length < prefix.length + IV_BYTES + TAG_BYTES) throw new DecryptionError(`envelope is truncated (${bytes.length} bytes)`);
  if (prefix.kind !== "value") throw new DecryptionError(`envelope holds a ${prefix.kind}, not a value: open it with the stream decryptor`);
  const dataKey = await unwrapDataKey(provider, prefix, ctx);
  const iv = bytes.subarray(prefix.length, prefix.length + IV_BYTES);
  const tag = bytes.subarray(prefix.length + IV_BYTES, prefix.length + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", dataKey, iv);
  decipher.setAAD(payloadAad(ctx));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(bytes.subarray(prefix.length + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new DecryptionError("the value does not authenticate: it was altered or belongs to another tenant, run or object");
  }
}

/**
 * Re-wraps the data key of an envelope (value, or the head of a stream) under the provider's current
 * version, leaving the payload untouched. `head` must hold at least the key prefix; the rest is kept as is.
 * Returns the new bytes and whether anything changed (already current: the input is returned).
 */
export async function rewrapHead(provider: KeyProvider, head: Buffer, context: ObjectContext): Promise<{ bytes: Buffer; oldPrefixLength: number; newPrefix: Buffer; changed: boolean }> {
  const ctx = objectContext(context);
  const prefix = decodeKeyPrefix(head);
  if (!prefix) throw new DecryptionError(`envelope is truncated (${head.length} bytes)`);
  const current = await provider.currentVersion();
  if (prefix.keyVersion === current) return { bytes: head, oldPrefixLength: prefix.length, newPrefix: head.subarray(0, prefix.length), changed: false };
  const dataKey = await unwrapDataKey(provider, prefix, ctx);
  const wrapped = await provider.wrap(dataKey, current, wrapAad(ctx, current));
  const newPrefix = encodeKeyPrefix(prefix.kind, current, wrapped);
  return { bytes: Buffer.concat([newPrefix, head.subarray(prefix.length)]), oldPrefixLength: prefix.length, newPrefix, changed: true };
}

/** Rewraps a value envelope (a database field) under the current key version. */
export async function rewrapValue(provider: KeyProvider, envelope: Uint8Array, context: ObjectContext): Promise<Buffer> {
  return (await rewrapHead(provider, Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength), context)).bytes;
}
