import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import {
  createDecryptStream,
  createEncryptStream,
  DecryptionError,
  fileKeyVersion,
  KeyUnavailableError,
  FileKeyring,
  keyVersionOf,
  openValue,
  readDecryptedFileToBuffer,
  rewrapFile,
  rewrapValue,
  scanKeyVersionUsage,
  sealValue,
  usageOf,
  writeEncryptedFile,
  type ObjectContext,
} from "../../runtime/security/crypto/index.ts";
import { FIXED_PREFIX_BYTES, IV_BYTES, STREAM_FIELDS_BYTES, TAG_BYTES } from "../../runtime/security/crypto/header.ts";

const CHUNK = 1024;
const ctx: ObjectContext = { tenant: "studio", run: "run-1", objectId: "artifact-a" };
let dir: string;
let keyring: FileKeyring;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-envelope-"));
  keyring = FileKeyring.create(join(dir, "keyring"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function encrypt(plaintext: Buffer, context = ctx, writes = [plaintext]): Promise<Buffer> {
  const encryptor = await createEncryptStream(keyring, context, { chunkBytes: CHUNK });
  const parts: Buffer[] = [];
  encryptor.on("data", (d: Buffer) => parts.push(d));
  const done = new Promise((resolve, reject) => encryptor.on("end", resolve).on("error", reject));
  for (const w of writes) encryptor.write(w);
  encryptor.end();
  await done;
  return Buffer.concat(parts);
}

async function decrypt(envelope: Buffer, context = ctx, pieceBytes = 777): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < envelope.length; i += pieceBytes) pieces.push(envelope.subarray(i, i + pieceBytes));
  const parts: Buffer[] = [];
  for await (const part of Readable.from(pieces).pipe(createDecryptStream(keyring, context))) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Offsets of a stream envelope's parts for chunk-level surgery. */
function streamLayout(envelope: Buffer) {
  const wrappedLength = envelope.readUInt16BE(10);
  const headerBytes = FIXED_PREFIX_BYTES + wrappedLength + STREAM_FIELDS_BYTES;
  const chunks: Buffer[] = [];
  for (let at = headerBytes; at < envelope.length; at += CHUNK + TAG_BYTES) chunks.push(envelope.subarray(at, at + CHUNK + TAG_BYTES));
  return { header: envelope.subarray(0, headerBytes), chunks, wrappedLength };
}

describe("small values (database fields)", () => {
  it("round-trips, empty and binary values included, each under a fresh data key", async () => {
    for (const value of [Buffer.alloc(0), Buffer.from("a red fox, watercolor"), randomBytes(5000)]) {
      const sealed = await sealValue(keyring, value, ctx);
      expect(await openValue(keyring, sealed, ctx)).toEqual(value);
      expect(keyVersionOf(sealed)).toBe(1);
    }
    const a = await sealValue(keyring, Buffer.from("same"), ctx);
    const b = await sealValue(keyring, Buffer.from("same"), ctx);
    expect(a.equals(b)).toBe(false);
  });

  it("a value moved to another object, run or tenant does not open", async () => {
    const sealed = await sealValue(keyring, Buffer.from("prompt"), ctx);
    for (const other of [{ ...ctx, objectId: "artifact-b" }, { ...ctx, run: "run-2" }, { ...ctx, tenant: "research" }]) {
      await expect(openValue(keyring, sealed, other)).rejects.toThrow(DecryptionError);
    }
  });

  it("swapping the body or the header between two objects fails", async () => {
    const a = await sealValue(keyring, Buffer.from("alpha alpha"), ctx);
    const otherCtx = { ...ctx, objectId: "artifact-b" };
    const b = await sealValue(keyring, Buffer.from("bravo bravo"), otherCtx);
    const headerBytes = FIXED_PREFIX_BYTES + a.readUInt16BE(10) + IV_BYTES + TAG_BYTES;
    const spliced = Buffer.concat([a.subarray(0, headerBytes), b.subarray(headerBytes)]);
    await expect(openValue(keyring, spliced, ctx)).rejects.toThrow(DecryptionError);
    await expect(openValue(keyring, b, ctx)).rejects.toThrow(DecryptionError);
  });

  it("every single bit flip, in magic, version, wrapped key, IV, tag or body, fails", async () => {
    const sealed = await sealValue(keyring, Buffer.from("sensitive prompt text"), ctx);
    // Bytes 6–9 hold the key version: a flip there names a version the keyring lacks, and says so.
    const keyVersionBytes = new Set([6, 7, 8, 9]);
    const wrongKind: string[] = [];
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const flipped = Buffer.from(sealed);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      const error = await openValue(keyring, flipped, ctx).then(
        () => undefined,
        (err: unknown) => err,
      );
      const expected = keyVersionBytes.has(bit >> 3) && error instanceof KeyUnavailableError ? KeyUnavailableError : DecryptionError;
      if (!(error instanceof expected)) wrongKind.push(`bit ${bit}: ${error === undefined ? "opened" : (error as Error).constructor.name}`);
    }
    // Every flip refused, each as a decryption failure (or a missing key version), never any other error.
    expect(wrongKind).toEqual([]);
  });

  it("truncated values fail", async () => {
    const sealed = await sealValue(keyring, Buffer.from("abc"), ctx);
    for (let n = 0; n < sealed.length; n++) await expect(openValue(keyring, sealed.subarray(0, n), ctx)).rejects.toThrow(DecryptionError);
  });

  it("validates the context, naming the field", async () => {
    const bad = { tenant: "", run: "r" } as unknown as ObjectContext;
    const error = await sealValue(keyring, Buffer.from("x"), bad).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual(["tenant", "objectId"]);
  });
});

describe("streams (artifacts)", () => {
  it("round-trips every size around chunk boundaries, whatever the write sizes", async () => {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17]) {
      const plaintext = randomBytes(size);
      const writes = size > 10 ? [plaintext.subarray(0, 5), plaintext.subarray(5, size - 3), plaintext.subarray(size - 3)] : [plaintext];
      const envelope = await encrypt(plaintext, ctx, writes);
      expect(await decrypt(envelope), `size ${size}`).toEqual(plaintext);
      expect(await decrypt(envelope, ctx, 1), `size ${size}, 1-byte reads`).toEqual(plaintext);
    }
  });

  it("a stream moved to another object, run or tenant fails", async () => {
    const envelope = await encrypt(randomBytes(3000));
    for (const other of [{ ...ctx, objectId: "artifact-b" }, { ...ctx, run: "run-2" }, { ...ctx, tenant: "research" }]) {
      await expect(decrypt(envelope, other)).rejects.toThrow(DecryptionError);
    }
  });

  it("every bit flip in the header, and in each chunk's body and tag, fails", async () => {
    const envelope = await encrypt(randomBytes(2 * CHUNK + 100));
    const { header, chunks } = streamLayout(envelope);
    const positions: number[] = [];
    for (let i = 0; i < header.length; i++) positions.push(i);
    let at = header.length;
    for (const chunk of chunks) {
      for (const offset of [0, 1, chunk.length >> 1, chunk.length - TAG_BYTES - 1, chunk.length - TAG_BYTES, chunk.length - 1]) positions.push(at + offset);
      at += chunk.length;
    }
    // Bytes 6–9 hold the key version, as in a sealed value: only a flip there may say the key is missing.
    const keyVersionBytes = new Set([6, 7, 8, 9]);
    let flips = 0;
    for (const byte of positions) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = Buffer.from(envelope);
        flipped[byte]! ^= 1 << bit;
        const error = await decrypt(flipped).then(
          () => undefined,
          (err: unknown) => err,
        );
        flips++;
        // Each flip, on its own: refused, and refused as a decryption failure, never as any other error.
        const expected = keyVersionBytes.has(byte) && error instanceof KeyUnavailableError ? KeyUnavailableError : DecryptionError;
        expect(error, `byte ${byte} bit ${bit}: ${error === undefined ? "opened" : (error as Error).constructor.name}`).toBeInstanceOf(expected);
      }
    }
    expect(flips).toBe(positions.length * 8);
  });

  it("truncation anywhere fails, at chunk boundaries too", async () => {
    const envelope = await encrypt(randomBytes(3 * CHUNK + 10));
    const { header } = streamLayout(envelope);
    const cuts = [0, 5, header.length, header.length + CHUNK + TAG_BYTES, header.length + 2 * (CHUNK + TAG_BYTES), header.length + 3 * (CHUNK + TAG_BYTES), envelope.length - 1];
    for (const cut of cuts) await expect(decrypt(envelope.subarray(0, cut)), `cut at ${cut}`).rejects.toThrow(DecryptionError);
  });

  it("reordered, duplicated or appended chunks fail", async () => {
    const envelope = await encrypt(randomBytes(3 * CHUNK + 10));
    const { header, chunks } = streamLayout(envelope);
    const [c0, c1, c2, c3] = chunks as [Buffer, Buffer, Buffer, Buffer];
    await expect(decrypt(Buffer.concat([header, c1, c0, c2, c3]))).rejects.toThrow(/chunk 0 does not authenticate/);
    await expect(decrypt(Buffer.concat([header, c0, c0, c2, c3]))).rejects.toThrow(/chunk 1 does not authenticate/);
    await expect(decrypt(Buffer.concat([header, c0, c1, c2, c3, c3]))).rejects.toThrow(DecryptionError);
    await expect(decrypt(Buffer.concat([envelope, Buffer.from([0])]))).rejects.toThrow(DecryptionError);
  });

  it("chunks spliced in from another stream fail", async () => {
    const a = await encrypt(randomBytes(2 * CHUNK + 1));
    const b = await encrypt(randomBytes(2 * CHUNK + 1));
    const la = streamLayout(a);
    const lb = streamLayout(b);
    await expect(decrypt(Buffer.concat([la.header, la.chunks[0]!, lb.chunks[1]!, la.chunks[2]!]))).rejects.toThrow(/chunk 1/);
  });

  it("releases no plaintext from a chunk that fails", async () => {
    const plaintext = Buffer.alloc(3 * CHUNK, 0x61);
    const envelope = await encrypt(plaintext);
    const { header } = streamLayout(envelope);
    const tampered = Buffer.from(envelope);
    tampered[header.length + CHUNK + TAG_BYTES + 3]! ^= 1; // inside chunk 1
    const received: Buffer[] = [];
    const decryptor = Readable.from([tampered]).pipe(createDecryptStream(keyring, ctx));
    await expect(
      (async () => {
        for await (const part of decryptor) received.push(part as Buffer);
      })(),
    ).rejects.toThrow(/chunk 1/);
    expect(Buffer.concat(received).length).toBeLessThanOrEqual(CHUNK);
  });
});

describe("encrypted files", () => {
  it("writes 0600 files whose tampering or moving is caught when read", async () => {
    const path = join(dir, "tamper.bin");
    const plaintext = randomBytes(5 * CHUNK);
    await writeEncryptedFile(keyring, ctx, [plaintext], path, { chunkBytes: CHUNK });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await readDecryptedFileToBuffer(keyring, ctx, path)).toEqual(plaintext);
    await expect(readDecryptedFileToBuffer(keyring, { ...ctx, objectId: "other" }, path)).rejects.toThrow(DecryptionError);
    const bytes = readFileSync(path);
    bytes[bytes.length - 100]! ^= 0x80;
    writeFileSync(path, bytes);
    await expect(readDecryptedFileToBuffer(keyring, ctx, path)).rejects.toThrow(/chunk 4 \(last\) does not authenticate/);
    await expect(readDecryptedFileToBuffer(keyring, ctx, join(dir, "absent.bin"))).rejects.toThrow(/ENOENT/);
  });

  it("leaves no file behind when the source fails mid-way", async () => {
    const path = join(dir, "failed.bin");
    async function* failing() {
      yield Buffer.alloc(3 * CHUNK);
      throw new Error("upload aborted");
    }
    await expect(writeEncryptedFile(keyring, ctx, failing(), path, { chunkBytes: CHUNK })).rejects.toThrow(/upload aborted/);
    expect(readdirSync(dir).filter((f) => f.startsWith("failed.bin"))).toEqual([]);
  });
});

describe("rotation, rewrap and retire over files and database fields", () => {
  it("after rotate and rewrap every object still opens, none uses the old version, and the old version retires", async () => {
    const root = join(dir, "data-rotation");
    const ring = FileKeyring.create(join(root, "keyring"));
    mkdirSync(join(root, "artifacts"));
    const artifacts = Array.from({ length: 6 }, (_, i) => ({ context: { tenant: i % 2 ? "studio" : "research", run: `run-${i}`, objectId: `out-${i}.png` }, plaintext: randomBytes(1000 + i * 3000) }));
    for (const [i, a] of artifacts.entries()) await writeEncryptedFile(ring, a.context, [a.plaintext], join(root, "artifacts", `a${i}`), { chunkBytes: CHUNK });
    const fields = artifacts.map((a) => ({ context: { ...a.context, objectId: "inputs" }, plaintext: Buffer.from(`prompt for ${a.context.run}`) }));
    let rows = await Promise.all(fields.map((f) => sealValue(ring, f.plaintext, f.context)));
    writeFileSync(join(root, "fields.db"), Buffer.concat(rows.map((r) => Buffer.concat([randomBytes(37), r]))));

    const skip = [join(root, "keyring")];
    let usage = await scanKeyVersionUsage(root, { skip });
    expect(usageOf(usage, 1)).toBe(12);
    expect(await ring.rotate()).toBe(2);
    await expect(ring.retire(1, usageOf(await scanKeyVersionUsage(root, { skip }), 1))).rejects.toThrow(/still protects 12 objects/);

    const bodiesBefore = await Promise.all(artifacts.map((_, i) => readFileSync(join(root, "artifacts", `a${i}`)).subarray(FIXED_PREFIX_BYTES + 60)));
    for (const [i, a] of artifacts.entries()) expect(await rewrapFile(ring, a.context, join(root, "artifacts", `a${i}`))).toBe(true);
    for (const [i, a] of artifacts.entries()) expect(await rewrapFile(ring, a.context, join(root, "artifacts", `a${i}`))).toBe(false);
    rows = await Promise.all(rows.map((r, i) => rewrapValue(ring, r, fields[i]!.context)));
    writeFileSync(join(root, "fields.db"), Buffer.concat(rows.map((r) => Buffer.concat([randomBytes(37), r]))));

    for (const [i, a] of artifacts.entries()) {
      const path = join(root, "artifacts", `a${i}`);
      expect(await fileKeyVersion(path)).toBe(2);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      // Only the header changed: the encrypted body is byte for byte the same.
      expect(readFileSync(path).subarray(FIXED_PREFIX_BYTES + 60).equals(bodiesBefore[i]!)).toBe(true);
      expect(await readDecryptedFileToBuffer(ring, a.context, path)).toEqual(a.plaintext);
    }
    for (const [i, f] of fields.entries()) {
      expect(keyVersionOf(rows[i]!)).toBe(2);
      expect(await openValue(ring, rows[i]!, f.context)).toEqual(f.plaintext);
    }
    usage = await scanKeyVersionUsage(root, { skip });
    expect(usageOf(usage, 1)).toBe(0);
    expect(usageOf(usage, 2)).toBe(12);
    await ring.retire(1, (v) => usageOf(usage, v));
    expect(await ring.versions()).toEqual([2]);
    expect(await readDecryptedFileToBuffer(ring, artifacts[0]!.context, join(root, "artifacts", "a0"))).toEqual(artifacts[0]!.plaintext);
  });

  it("a rewrapped object still refuses another object's context", async () => {
    const ring = FileKeyring.create(join(dir, "keyring-rewrap"));
    const sealed = await sealValue(ring, Buffer.from("x"), ctx);
    await ring.rotate();
    await expect(rewrapValue(ring, sealed, { ...ctx, tenant: "research" })).rejects.toThrow(DecryptionError);
    const rewrapped = await rewrapValue(ring, sealed, ctx);
    await expect(openValue(ring, rewrapped, { ...ctx, run: "run-2" })).rejects.toThrow(DecryptionError);
    expect((await openValue(ring, rewrapped, ctx)).toString()).toBe("x");
  });
});

describe("nothing written holds plaintext", () => {
  it("a scan of every file written (artifacts, fields, keyring) finds none of the known payloads", async () => {
    const root = join(dir, "data-scan");
    const ring = FileKeyring.create(join(root, "keyring"));
    mkdirSync(join(root, "artifacts"));
    const payloads = [Buffer.from("PLAINTEXT-MARKER a portrait of a confidential patient ".repeat(300)), Buffer.from("PLAINTEXT-MARKER secret prompt 42")];
    await writeEncryptedFile(ring, ctx, [payloads[0]!], join(root, "artifacts", "big.png"), { chunkBytes: CHUNK });
    writeFileSync(join(root, "fields.db"), await sealValue(ring, payloads[1]!, { ...ctx, objectId: "prompt" }));
    await ring.rotate();
    await rewrapFile(ring, ctx, join(root, "artifacts", "big.png"));

    const needles = [...payloads.map((p) => p.subarray(0, 32)), Buffer.from("PLAINTEXT-MARKER"), Buffer.from("secret prompt 42")];
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(join(d, e.name)) : files.push(join(d, e.name)));
    };
    walk(root);
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const needle of needles) expect(bytes.includes(needle), `${file} holds plaintext`).toBe(false);
    }
    expect(await readDecryptedFileToBuffer(ring, ctx, join(root, "artifacts", "big.png"))).toEqual(payloads[0]);
  });
});
