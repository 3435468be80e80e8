/**
 * Security figures: audit append rate with checkpoints on (group commit, fdatasync'ed, on disk), audit verify
 * rate, and artifact encryption/decryption throughput on one core (chunked AES-256-GCM, in memory).
 * Medians of several runs, with the targets and whether each is met. Prints JSON with --json.
 *
 *   npm run bench:security -- --json [--runs 5] [--entries 50000] [--concurrency 64,256] [--mib 256] [--dir DIR]
 *
 * With group commit the append rate is bounded by callers in flight / fdatasync latency, so it is measured at
 * each --concurrency; the target is judged at the largest (an agent answering 20,000 requests/s has that many
 * in flight). --dir picks the filesystem the log is written to (default: the system temporary directory).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AuditLog, DirectoryCheckpointSink, generateSigningKeyPair, loadPublicKey, verifyAuditLog } from "../runtime/security/audit/index.ts";
import { createDecryptStream, createEncryptStream, DEFAULT_CHUNK_BYTES, FileKeyring } from "../runtime/security/crypto/index.ts";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? "");
}
function positiveInt(name: string, fallback: string): number {
  const value = Number(arg(name, fallback));
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`--${name} must be a positive integer\n`);
    process.exit(2);
  }
  return value;
}

const runs = positiveInt("runs", "5");
const entries = positiveInt("entries", "50000");
const concurrencies = arg("concurrency", "64,256").split(",").map(Number);
if (concurrencies.some((c) => !Number.isInteger(c) || c < 1)) {
  process.stderr.write("--concurrency must be a comma-separated list of positive integers, e.g. 64,256\n");
  process.exit(2);
}
const mib = positiveInt("mib", "256");
const baseDir = arg("dir", tmpdir());
const TARGETS = { auditAppendPerSecond: 20_000, auditVerifyPerSecond: 100_000, encryptMBPerSecond: 500 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function event(i: number) {
  return { actor: `token:user-${i % 13}@studio`, tenant: "studio", action: "run.submit", object: `run/run-${i}`, outcome: "success" as const, source: "10.0.0.7", data: { workflow: "upscale", priority: "batch", stages: 4, i } };
}

/** One audit run: `entries` appends from `concurrency` callers at once (as concurrent API requests), then a verify of the file. */
async function auditRun(concurrency: number): Promise<{ appendPerSecond: number; verifyPerSecond: number; lines: number }> {
  const dir = mkdtempSync(join(baseDir, "gpufabric-bench-audit-"));
  try {
    const keys = generateSigningKeyPair(join(dir, "keys"));
    const log = await AuditLog.open({ dir: join(dir, "audit"), signingKeyPath: keys.privateKeyPath, sink: new DirectoryCheckpointSink(join(dir, "checkpoints")), checkpointEvery: 1000, checkpointIntervalMs: 60_000 });
    let next = 0;
    const caller = async () => {
      for (let i = next++; i < entries; i = next++) await log.append(event(i));
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, caller));
    const appendS = (performance.now() - t0) / 1000;
    await log.close();
    const t1 = performance.now();
    const report = await verifyAuditLog(join(dir, "audit"), { publicKey: loadPublicKey(keys.publicKeyPath), checkpointsDir: join(dir, "checkpoints") });
    const verifyS = (performance.now() - t1) / 1000;
    if (!report.ok) throw new Error(`bench log does not verify: ${report.firstBad?.reason}`);
    return { appendPerSecond: entries / appendS, verifyPerSecond: report.entries / verifyS, lines: report.entries };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One encryption run: `mib` MiB through the chunked encryptor in memory, then the same bytes through the decryptor. */
async function cryptoRun(keyring: FileKeyring, block: Buffer): Promise<{ encryptMBPerSecond: number; decryptMBPerSecond: number }> {
  const context = { tenant: "studio", run: "run-bench", objectId: "artifact.bin" };
  const source = () => Readable.from((function* () {
    for (let i = 0; i < mib; i++) yield block;
  })(), { objectMode: false });
  const ciphertext: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _e, done) {
      ciphertext.push(chunk);
      done();
    },
  });
  const t0 = performance.now();
  await pipeline(source(), await createEncryptStream(keyring, context), collect);
  const encryptS = (performance.now() - t0) / 1000;
  let plaintextBytes = 0;
  const count = new Writable({
    write(chunk: Buffer, _e, done) {
      plaintextBytes += chunk.length;
      done();
    },
  });
  const t1 = performance.now();
  await pipeline(Readable.from(ciphertext), createDecryptStream(keyring, context), count);
  const decryptS = (performance.now() - t1) / 1000;
  if (plaintextBytes !== mib * block.length) throw new Error("decrypted length differs");
  const mb = (mib * block.length) / 1e6;
  return { encryptMBPerSecond: mb / encryptS, decryptMBPerSecond: mb / decryptS };
}

const auditBy = new Map<number, Awaited<ReturnType<typeof auditRun>>[]>();
for (const c of concurrencies) {
  const results = [];
  for (let r = 0; r < runs; r++) results.push(await auditRun(c));
  auditBy.set(c, results);
}
const judged = Math.max(...concurrencies);
const audit = auditBy.get(judged)!;
const keyDir = mkdtempSync(join(tmpdir(), "gpufabric-bench-keyring-"));
const crypto = [];
try {
  const keyring = FileKeyring.create(join(keyDir, "keyring"));
  const block = randomBytes(1 << 20);
  await cryptoRun(keyring, block); // warm-up
  for (let r = 0; r < runs; r++) crypto.push(await cryptoRun(keyring, block));
} finally {
  rmSync(keyDir, { recursive: true, force: true });
}

const round = (x: number) => Math.round(x);
const appendMedian = median(audit.map((a) => a.appendPerSecond));
const verifyMedian = median(audit.map((a) => a.verifyPerSecond));
const encryptMedian = median(crypto.map((c) => c.encryptMBPerSecond));
const report = {
  bench: "security",
  node: process.version,
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
  runs,
  auditAppend: {
    entries,
    concurrentCallers: judged,
    checkpointEvery: 1000,
    durability: "group commit, fdatasync before each append resolves; checkpoints exported to a directory sink",
    entriesPerSecond: round(appendMedian),
    perRun: audit.map((a) => round(a.appendPerSecond)),
    target: TARGETS.auditAppendPerSecond,
    met: appendMedian >= TARGETS.auditAppendPerSecond,
    byConcurrency: concurrencies.map((c) => ({ concurrentCallers: c, entriesPerSecond: round(median(auditBy.get(c)!.map((a) => a.appendPerSecond))) })),
  },
  auditVerify: {
    entries: audit[0]!.lines,
    entriesPerSecond: round(verifyMedian),
    perRun: audit.map((a) => round(a.verifyPerSecond)),
    target: TARGETS.auditVerifyPerSecond,
    met: verifyMedian >= TARGETS.auditVerifyPerSecond,
  },
  artifactEncryption: {
    mebibytes: mib,
    chunkBytes: DEFAULT_CHUNK_BYTES,
    where: "in memory, one core (the event loop's thread)",
    MBPerSecond: round(encryptMedian),
    perRun: crypto.map((c) => round(c.encryptMBPerSecond)),
    decryptMBPerSecond: round(median(crypto.map((c) => c.decryptMBPerSecond))),
    target: TARGETS.encryptMBPerSecond,
    met: encryptMedian >= TARGETS.encryptMBPerSecond,
  },
};
if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  const mark = (met: boolean) => (met ? "met" : "MISSED");
  process.stdout.write(`audit append: ${report.auditAppend.entriesPerSecond} entries/s with ${judged} callers (${report.auditAppend.byConcurrency.map((b) => `${b.entriesPerSecond} with ${b.concurrentCallers}`).join(", ")}) (target ${TARGETS.auditAppendPerSecond}: ${mark(report.auditAppend.met)})\n`);
  process.stdout.write(`audit verify: ${report.auditVerify.entriesPerSecond} entries/s (target ${TARGETS.auditVerifyPerSecond}: ${mark(report.auditVerify.met)})\n`);
  process.stdout.write(`artifact encryption: ${report.artifactEncryption.MBPerSecond} MB/s, decryption ${report.artifactEncryption.decryptMBPerSecond} MB/s (target ${TARGETS.encryptMBPerSecond}: ${mark(report.artifactEncryption.met)})\n`);
}
