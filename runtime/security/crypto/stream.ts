import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { objectContext, payloadAad, type ObjectContext } from "./context.ts";
import { newDataKey, unwrapDataKey } from "./envelope.ts";
import { decodeKeyPrefix, decodeStreamFields, encodeKeyPrefix, IV_BYTES, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, NONCE_PREFIX_BYTES, STREAM_FIELDS_BYTES, TAG_BYTES, type KeyPrefix } from "./header.ts";
import { DecryptionError, type KeyProvider } from "./key-provider.ts";

/** 64 KiB chunks: small enough to bound memory per stream, large enough that per-chunk setup is noise. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
const MAX_CHUNKS = 0xffffffff;

/**
 * Chunk nonce (STREAM construction): nonce prefix (7 random bytes) | chunk counter (u32) | final flag (1 byte).
 * A chunk decrypts only at its own position, and only the last chunk carries the final flag, so
 * reordering, dropping, truncating or appending chunks all fail authentication.
 */
function chunkNonce(prefix: Buffer, counter: number, final: boolean): Buffer {
  const nonce = Buffer.allocUnsafe(IV_BYTES);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(counter, NONCE_PREFIX_BYTES);
  nonce.writeUInt8(final ? 1 : 0, NONCE_PREFIX_BYTES + 4);
  return nonce;
}

export interface EncryptStreamOptions {
  /** Plaintext bytes per chunk (1 KiB to 16 MiB; default 64 KiB). */
  readonly chunkBytes?: number;
}

/** An artifact encryptor: plaintext in, a self-describing envelope out. A fresh data key per stream. */
export async function createEncryptStream(provider: KeyProvider, context: ObjectContext, options: EncryptStreamOptions = {}): Promise<Transform> {
  const ctx = objectContext(context);
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes must be an integer from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES} (got ${chunkBytes})`);
  }
  const { dataKey, keyVersion, wrappedKey } = await newDataKey(provider, ctx);
  const noncePrefix = randomBytes(NONCE_PREFIX_BYTES);
  const fields = Buffer.allocUnsafe(STREAM_FIELDS_BYTES);
  fields.writeUInt32BE(chunkBytes, 0);
  noncePrefix.copy(fields, 4);
  const header = Buffer.concat([encodeKeyPrefix("stream", keyVersion, wrappedKey), fields]);
  return new ChunkEncryptor(dataKey, payloadAad(ctx), noncePrefix, chunkBytes, header);
}

class ChunkEncryptor extends Transform {
  private readonly pending: Buffer;
  private filled = 0;
  private counter = 0;
  private headerSent = false;

  constructor(
    private readonly dataKey: Buffer,
    private readonly aad: Buffer,
    private readonly noncePrefix: Buffer,
    private readonly chunkBytes: number,
    private readonly header: Buffer,
  ) {
    super();
    this.pending = Buffer.allocUnsafe(chunkBytes);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.sendHeader();
      let offset = 0;
      while (offset < data.length) {
        // A full chunk goes out only once more data follows it: the last chunk must be the one flagged final.
        if (this.filled === this.chunkBytes) {
          this.seal(this.pending, false);
          this.filled = 0;
        }
        if (this.filled === 0 && data.length - offset > this.chunkBytes) {
          this.seal(data.subarray(offset, offset + this.chunkBytes), false);
          offset += this.chunkBytes;
          continue;
        }
        const n = Math.min(this.chunkBytes - this.filled, data.length - offset);
        data.copy(this.pending, this.filled, offset, offset + n);
        this.filled += n;
        offset += n;
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.sendHeader();
      this.seal(this.pending.subarray(0, this.filled), true);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.push(this.header);
  }

  private seal(plaintext: Buffer, final: boolean): void {
    if (this.counter >= MAX_CHUNKS) throw new RangeError("stream exceeds 2^32-1 chunks: use a larger chunk size");
    const cipher = createCipheriv("aes-256-gcm", this.dataKey, chunkNonce(this.noncePrefix, this.counter++, final));
    cipher.setAAD(this.aad);
    this.push(cipher.update(plaintext));
    cipher.final();
    this.push(cipher.getAuthTag());
  }
}

/** An artifact decryptor: envelope in, plaintext out; a chunk's plaintext is released only once it authenticates. */
export function createDecryptStream(provider: KeyProvider, context: ObjectContext): Transform {
  return new ChunkDecryptor(provider, objectContext(context));
}

class ChunkDecryptor extends Transform {
  private readonly buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private key: { dataKey: Buffer; noncePrefix: Buffer; wireChunk: number } | undefined;
  private counter = 0;
  private readonly aad: Buffer;

  constructor(
    private readonly provider: KeyProvider,
    private readonly context: ObjectContext,
  ) {
    super();
    this.aad = payloadAad(context);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.buffered.push(data);
    this.bufferedBytes += data.length;
    this.drain().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    this.finish().then(() => done(), done);
  }

  private async drain(): Promise<void> {
    if (!this.key && !(await this.readHeader())) return;
    const { wireChunk } = this.key!;
    // Strictly more than one chunk buffered: this one is not the last, whatever follows.
    while (this.bufferedBytes > wireChunk) this.open(this.consume(wireChunk), false);
  }

  private async finish(): Promise<void> {
    if (!this.key && !(await this.readHeader())) throw new DecryptionError(`envelope is truncated: ${this.bufferedBytes} bytes do not hold a stream header`);
    const rest = this.consume(this.bufferedBytes);
    if (rest.length < TAG_BYTES) throw new DecryptionError("stream is truncated: the final chunk is missing");
    this.open(rest, true);
  }

  private async readHeader(): Promise<boolean> {
    const head = this.joined();
    const prefix: KeyPrefix | undefined = decodeKeyPrefix(head);
    if (!prefix || head.length < prefix.length + STREAM_FIELDS_BYTES) return false;
    if (prefix.kind !== "stream") throw new DecryptionError(`envelope holds a ${prefix.kind}, not a stream: open it with openValue`);
    const { chunkSize, noncePrefix } = decodeStreamFields(head, prefix.length);
    const dataKey = await unwrapDataKey(this.provider, prefix, this.context);
    this.consume(prefix.length + STREAM_FIELDS_BYTES);
    this.key = { dataKey, noncePrefix, wireChunk: chunkSize + TAG_BYTES };
    return true;
  }

  private open(wire: Buffer, final: boolean): void {
    const { dataKey, noncePrefix } = this.key!;
    const decipher = createDecipheriv("aes-256-gcm", dataKey, chunkNonce(noncePrefix, this.counter, final));
    decipher.setAAD(this.aad);
    decipher.setAuthTag(wire.subarray(wire.length - TAG_BYTES));
    const plaintext = decipher.update(wire.subarray(0, wire.length - TAG_BYTES));
    try {
      decipher.final();
    } catch {
      throw new DecryptionError(
        `chunk ${this.counter}${final ? " (last)" : ""} does not authenticate: the stream was altered, truncated, reordered, or belongs to another tenant, run or object`,
      );
    }
    this.counter++;
    this.push(plaintext);
  }

  /** Everything buffered as one Buffer (joined once), without consuming it. */
  private joined(): Buffer {
    if (this.buffered.length > 1) this.buffered.splice(0, this.buffered.length, Buffer.concat(this.buffered, this.bufferedBytes));
    return this.buffered[0] ?? Buffer.alloc(0);
  }

  private consume(n: number): Buffer {
    let out: Buffer;
    const first = this.buffered[0];
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.buffered.shift();
      else this.buffered[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const head = this.buffered[0]!;
        const k = Math.min(head.length, n - filled);
        head.copy(out, filled, 0, k);
        filled += k;
        if (k === head.length) this.buffered.shift();
        else this.buffered[0] = head.subarray(k);
      }
    }
    this.bufferedBytes -= n;
    return out;
  }
}
