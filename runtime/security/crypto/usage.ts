import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { FIXED_PREFIX_BYTES, FORMAT_VERSION, MAGIC } from "./header.ts";

/** How many envelopes under a directory use each key version. */
export interface KeyVersionUsage {
  /** Files that are envelopes (artifacts), by key version. */
  readonly files: ReadonlyMap<number, number>;
  /** Envelope headers found inside other files (database fields stored as blobs), by key version. */
  readonly embedded: ReadonlyMap<number, number>;
  readonly filesScanned: number;
}

const SCAN_BLOCK = 1024 * 1024;
/** The base64 of an envelope's first 6 bytes (magic, format version) without the kind, and the characters that encode the fixed prefix. */
const BASE64_MAGIC = Buffer.from(Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION, 0])]).toString("base64").slice(0, 7), "latin1");
const BASE64_HEADER_CHARS = 16;

/**
 * Counts key-version use under `root`, conservatively: a file that starts with an envelope header counts
 * once; any other file (a database) is scanned for embedded headers (magic, format version, a kind byte),
 * each counted under the version that follows. A false match can only refuse a retire, never allow one.
 */
export async function scanKeyVersionUsage(root: string, options: { skip?: readonly string[] } = {}): Promise<KeyVersionUsage> {
  const files = new Map<number, number>();
  const embedded = new Map<number, number>();
  const skip = new Set(options.skip ?? []);
  let filesScanned = 0;
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (skip.has(path)) continue;
      if (entry.isDirectory()) await visit(path);
      else if (entry.isFile()) {
        filesScanned++;
        await scanFile(path, files, embedded);
      }
    }
  };
  await visit(root);
  return { files, embedded, filesScanned };
}

async function scanFile(path: string, files: Map<number, number>, embedded: Map<number, number>): Promise<void> {
  const handle = await open(path, "r");
  try {
    const block = Buffer.alloc(SCAN_BLOCK + BASE64_HEADER_CHARS);
    let carried = 0;
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(block, carried, SCAN_BLOCK, position);
      const end = carried + bytesRead;
      if (position === 0 && end >= FIXED_PREFIX_BYTES && isHeaderAt(block, 0)) {
        bump(files, block.readUInt32BE(6));
        return;
      }
      for (let at = block.indexOf(MAGIC, 0); at !== -1 && at + FIXED_PREFIX_BYTES <= end; at = block.indexOf(MAGIC, at + 1)) {
        if (isHeaderAt(block, at)) bump(embedded, block.readUInt32BE(at + 6));
      }
      // Fields stored as text hold the envelope in base64: its header starts with the same 8 characters.
      for (let at = block.indexOf(BASE64_MAGIC, 0); at !== -1 && at + BASE64_HEADER_CHARS <= end; at = block.indexOf(BASE64_MAGIC, at + 1)) {
        const header = Buffer.from(block.subarray(at, at + BASE64_HEADER_CHARS).toString("latin1"), "base64");
        if (header.length >= FIXED_PREFIX_BYTES && isHeaderAt(header, 0)) bump(embedded, header.readUInt32BE(6));
      }
      if (bytesRead === 0) return;
      position += bytesRead;
      // Keep the tail so a header split across two reads is still seen.
      carried = Math.min(BASE64_HEADER_CHARS - 1, end);
      block.copy(block, 0, end - carried, end);
    }
  } finally {
    await handle.close();
  }
}

function isHeaderAt(block: Buffer, at: number): boolean {
  return block.subarray(at, at + MAGIC.length).equals(MAGIC) && block[at + 4] === FORMAT_VERSION && (block[at + 5] === 1 || block[at + 5] === 2) && block.readUInt32BE(at + 6) > 0;
}

function bump(map: Map<number, number>, version: number): void {
  map.set(version, (map.get(version) ?? 0) + 1);
}

/** Objects under `root` that use `version`, files and embedded fields together. */
export function usageOf(usage: KeyVersionUsage, version: number): number {
  return (usage.files.get(version) ?? 0) + (usage.embedded.get(version) ?? 0);
}
