import { randomFillSync } from "node:crypto";

/**
 * Bytes from the CSPRNG, drawn from a pooled buffer: one getrandom call per 4 KiB instead of one per
 * data key or IV (as node's randomUUID does). Every byte is handed out once and wiped from the pool as it
 * is, so a data key is not left behind in a second copy.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

export function randomBytesPooled(length: number): Buffer {
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`length must be a whole number of 0 or more (got ${length})`);
  const out = Buffer.allocUnsafe(length);
  if (length > POOL_BYTES / 8) return randomFillSync(out);
  if (offset + length > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(out, 0, offset, offset + length);
  pool.fill(0, offset, offset + length);
  offset += length;
  return out;
}
