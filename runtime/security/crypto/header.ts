import { DecryptionError } from "./key-provider.ts";

/**
 * The self-describing header every envelope starts with (big-endian):
 *
 *   magic "GFEV" (4) | format version (1) | kind (1) | key version (u32) | wrapped key length (u16) | wrapped key
 *   kind "value":  IV (12) | tag (16) | ciphertext
 *   kind "stream": chunk size (u32) | nonce prefix (7) | chunks, each ciphertext + tag (16)
 *
 * The wrapped key and key version come first so a rewrap replaces just that prefix.
 */
export const MAGIC = Buffer.from("GFEV", "ascii");
export const FORMAT_VERSION = 1;
export const KIND = { value: 1, stream: 2 } as const;
export type EnvelopeKind = keyof typeof KIND;

export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const NONCE_PREFIX_BYTES = 7;
export const MIN_CHUNK_BYTES = 1024;
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024;
/** Magic, format version, kind, key version and wrapped key length. */
export const FIXED_PREFIX_BYTES = 12;

/** The common part of a header: which key version wrapped the data key, and the wrapped key. */
export interface KeyPrefix {
  readonly kind: EnvelopeKind;
  readonly keyVersion: number;
  readonly wrappedKey: Buffer;
  /** Bytes the prefix takes; the kind-specific fields follow. */
  readonly length: number;
}

export function encodeKeyPrefix(kind: EnvelopeKind, keyVersion: number, wrappedKey: Uint8Array): Buffer {
  if (wrappedKey.length > 0xffff) throw new RangeError(`a wrapped key of ${wrappedKey.length} bytes does not fit the header (at most 65535)`);
  const out = Buffer.allocUnsafe(FIXED_PREFIX_BYTES + wrappedKey.length);
  MAGIC.copy(out, 0);
  out.writeUInt8(FORMAT_VERSION, 4);
  out.writeUInt8(KIND[kind], 5);
  out.writeUInt32BE(keyVersion, 6);
  out.writeUInt16BE(wrappedKey.length, 10);
  out.set(wrappedKey, FIXED_PREFIX_BYTES);
  return out;
}

/** Parses the key prefix; returns undefined when `bytes` is too short to hold it yet. */
export function decodeKeyPrefix(bytes: Buffer): KeyPrefix | undefined {
  if (bytes.length < FIXED_PREFIX_BYTES) return undefined;
  if (!bytes.subarray(0, 4).equals(MAGIC)) throw new DecryptionError("not a gpufabric envelope (bad magic bytes)");
  const format = bytes.readUInt8(4);
  if (format !== FORMAT_VERSION) throw new DecryptionError(`envelope format version ${format} is not supported (this build reads version ${FORMAT_VERSION})`);
  const kindCode = bytes.readUInt8(5);
  const kind = (Object.keys(KIND) as EnvelopeKind[]).find((k) => KIND[k] === kindCode);
  if (!kind) throw new DecryptionError(`envelope kind ${kindCode} is unknown`);
  const keyVersion = bytes.readUInt32BE(6);
  if (keyVersion === 0) throw new DecryptionError("envelope names key version 0, which never exists");
  const wrappedLength = bytes.readUInt16BE(10);
  if (wrappedLength === 0) throw new DecryptionError("envelope has an empty wrapped key");
  const length = FIXED_PREFIX_BYTES + wrappedLength;
  if (bytes.length < length) return undefined;
  return { kind, keyVersion, wrappedKey: Buffer.from(bytes.subarray(FIXED_PREFIX_BYTES, length)), length };
}

/** Reads the key version of an envelope (value or stream) from its first bytes. */
export function keyVersionOf(bytes: Buffer): number {
  const prefix = decodeKeyPrefix(bytes);
  if (!prefix) throw new DecryptionError(`envelope is truncated: ${bytes.length} bytes do not hold a header`);
  return prefix.keyVersion;
}

/** The stream header's own fields after the key prefix. */
export const STREAM_FIELDS_BYTES = 4 + NONCE_PREFIX_BYTES;

export function decodeStreamFields(bytes: Buffer, offset: number): { chunkSize: number; noncePrefix: Buffer } {
  const chunkSize = bytes.readUInt32BE(offset);
  if (chunkSize < MIN_CHUNK_BYTES || chunkSize > MAX_CHUNK_BYTES) throw new DecryptionError(`stream chunk size ${chunkSize} is outside ${MIN_CHUNK_BYTES}..${MAX_CHUNK_BYTES}`);
  return { chunkSize, noncePrefix: Buffer.from(bytes.subarray(offset + 4, offset + STREAM_FIELDS_BYTES)) };
}
