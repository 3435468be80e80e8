import { createHash, generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import {
  AuditLog,
  AuditUnavailableError,
  chainHash,
  checkpointSignatureValid,
  DirectoryCheckpointSink,
  generateSigningKeyPair,
  GENESIS_HASH,
  loadPublicKey,
  readExportedCheckpoints,
  verifyAuditLog,
  type AuditEntry,
  type AuditEvent,
  type CheckpointSink,
} from "../../runtime/security/audit/index.ts";
import { FakeClock, FullDiskFile } from "./audit-support.ts";

let dir: string;
let keys: { privateKeyPath: string; publicKeyPath: string };
let clock: FakeClock;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-audit-"));
  keys = generateSigningKeyPair(join(dir, "audit-signing"));
  clock = new FakeClock();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const event = (i: number, extra: Partial<AuditEvent> = {}): AuditEvent => ({ actor: "token:ci@studio", tenant: "studio", action: "run.submit", object: `run/run-${i}`, outcome: "success", source: "10.0.0.7", data: { i }, ...extra });
const logDir = () => join(dir, "audit");
const cpDir = () => join(dir, "checkpoints");
const open = (options: Partial<Parameters<typeof AuditLog.open>[0]> = {}) =>
  AuditLog.open({ dir: logDir(), signingKeyPath: keys.privateKeyPath, sink: new DirectoryCheckpointSink(cpDir()), checkpointEvery: 5, checkpointIntervalMs: 60_000, clock, ...options });
const lines = () => readFileSync(join(logDir(), "log.jsonl"), "utf8").trimEnd().split("\n");
const entries = () => lines().map((l) => JSON.parse(l) as AuditEntry);
const verify = () => verifyAuditLog(logDir(), { publicKey: loadPublicKey(keys.publicKeyPath), checkpointsDir: cpDir() });

describe("AuditLog.append", () => {
  it("writes canonical, hash-chained lines with seq, time and prev, in a 0600 file", async () => {
    const log = await open();
    const a = await log.append(event(1, { data: { z: 1, a: [2, { y: true, b: null }] } }));
    const b = await log.append(event(2, { tenant: null, object: null, source: null }));
    await log.close();
    const raw = lines();
    expect(raw[0]).toBe(
      '{"action":"run.submit","actor":"token:ci@studio","data":{"a":[2,{"b":null,"y":true}],"z":1},"object":"run/run-1","outcome":"success","prev":"' +
        GENESIS_HASH +
        '","seq":1,"source":"10.0.0.7","tenant":"studio","time":"2026-01-01T00:00:00.000Z"}',
    );
    expect(a).toEqual({ seq: 1, hash: chainHash(GENESIS_HASH, Buffer.from(raw[0]!)) });
    expect(b.seq).toBe(2);
    expect(entries()[1]!.prev).toBe(a.hash);
    expect(entries()[1]).toMatchObject({ tenant: null, object: null, source: null });
    expect(statSync(join(logDir(), "log.jsonl")).mode & 0o777).toBe(0o600);
  });

  it("validates events at the edge, naming each bad field", async () => {
    const log = await open();
    const error = await log.append({ actor: "", action: "x", outcome: "maybe" } as unknown as AuditEvent).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual(["actor", "outcome"]);
    for (const bad of [{ n: Number.NaN }, { n: () => 1 }, { n: [1, { m: Infinity }] }, { n: 1n }]) {
      const dataError = await log.append(event(1, { data: bad as Record<string, unknown> })).catch((err: unknown) => err);
      expect(dataError).toBeInstanceOf(ValidationError);
      expect((dataError as ValidationError).message).toMatch(/data\.n.*must be plain JSON/);
    }
    await expect(log.append(event(1, { data: { s: "\ud800" } }))).rejects.toThrow(/data: must be plain JSON \(Lone surrogate/);
    await expect(log.append(event(1, { data: { big: "x".repeat(70_000) } }))).rejects.toThrow(/at most 65536/);
    expect((await log.append(event(1))).seq).toBe(1);
    await log.close();
  });

  it("groups concurrent appends into one write, each resolving with its own seq", async () => {
    const log = await open({ checkpointEvery: 1000 });
    const appended = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(event(i))));
    expect(appended.map((a) => a.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    await log.close();
    expect((await verify()).ok).toBe(true);
  });
});

describe("checkpoints", () => {
  it("signs one every N entries, appends it to the log and exports it to the sink", async () => {
    const log = await open({ checkpointEvery: 5 });
    for (let i = 0; i < 12; i++) await log.append(event(i));
    const all = entries();
    const checkpoints = all.filter((e) => e.action === "audit.checkpoint");
    expect(checkpoints.map((c) => c.seq)).toEqual([6, 12]);
    expect(checkpoints[0]!.data).toMatchObject({ checkpoint: { seq: 5, hash: all[5]!.prev } });
    const exported = await readExportedCheckpoints(cpDir());
    // Exported checkpoints cover the checkpoint entries themselves.
    expect(exported.checkpoints.map((c) => c.seq)).toEqual([6, 12]);
    expect(exported.checkpoints[0]!.hash).toBe(all[6]!.prev);
    const publicKey = loadPublicKey(keys.publicKeyPath);
    for (const cp of exported.checkpoints) expect(checkpointSignatureValid(cp, publicKey)).toBe(true);
    expect(checkpointSignatureValid({ ...exported.checkpoints[0]!, seq: 4 }, publicKey)).toBe(false);
    await log.close();
  });

  it("writes one at least every interval even when idle, driven by the clock", async () => {
    const log = await open({ checkpointEvery: 1000, checkpointIntervalMs: 60_000 });
    await log.append(event(1));
    clock.advance(59_999);
    await log.whenIdle();
    expect(entries()).toHaveLength(1);
    clock.advance(1);
    await log.whenIdle();
    expect(entries().map((e) => e.action)).toEqual(["run.submit", "audit.checkpoint"]);
    // Idle: no new entries, yet a fresh checkpoint each interval proves the log was alive and unchanged.
    clock.advance(60_000);
    clock.advance(60_000);
    await log.whenIdle();
    const all = entries();
    expect(all.map((e) => e.action)).toEqual(["run.submit", "audit.checkpoint", "audit.checkpoint", "audit.checkpoint"]);
    expect(all[3]!.time).toBe(new Date(clock.now()).toISOString());
    expect((await readExportedCheckpoints(cpDir())).checkpoints.map((c) => c.seq)).toEqual([2, 3, 4]);
    await log.close();
    expect((await verify()).ok).toBe(true);
  });

  it("a checkpoint by count restarts the interval", async () => {
    const log = await open({ checkpointEvery: 2, checkpointIntervalMs: 60_000 });
    clock.advance(50_000);
    await log.append(event(1));
    await log.append(event(2)); // checkpoint by count at t=50s
    clock.advance(59_000);
    await log.whenIdle();
    expect(entries().filter((e) => e.action === "audit.checkpoint")).toHaveLength(1);
    clock.advance(1_000);
    await log.whenIdle();
    expect(entries().filter((e) => e.action === "audit.checkpoint")).toHaveLength(2);
    await log.close();
  });

  it("close records the shutdown and seals it with a checkpoint", async () => {
    const log = await open({ checkpointEvery: 100 });
    await log.append(event(1));
    await log.close();
    expect(entries().map((e) => e.action)).toEqual(["run.submit", "audit.shutdown", "audit.checkpoint"]);
    await expect(log.append(event(2))).rejects.toThrow(AuditUnavailableError);
  });
});

describe("reopening", () => {
  it("continues the chain from the last entry", async () => {
    const first = await open();
    for (let i = 0; i < 3; i++) await first.append(event(i));
    await first.close();
    const second = await open();
    // 1..3, the shutdown and its checkpoint; then this session's start record and its checkpoint.
    expect(second.position.seq).toBe(7);
    expect(entries().slice(3).map((e) => e.action)).toEqual(["audit.shutdown", "audit.checkpoint", "audit.start", "audit.checkpoint"]);
    expect((await second.append(event(9))).seq).toBe(8);
    await second.close();
    expect(entries().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect((await verify()).ok).toBe(true);
  });

  it("cuts off a torn last line (never acknowledged) and seals what was whole", async () => {
    const first = await open({ checkpointEvery: 100 });
    for (let i = 0; i < 3; i++) await first.append(event(i));
    await first.whenIdle();
    const path = join(logDir(), "log.jsonl");
    writeFileSync(path, `${readFileSync(path, "utf8")}{"action":"run.sub`);
    rmSync(join(logDir(), "writer.lock")); // the crashed writer is gone
    const second = await open({ checkpointEvery: 100 });
    // Entries 1..3 (unsealed: the writer crashed), then on open: a checkpoint, the note of the unsealed tail, a checkpoint.
    expect(second.position.seq).toBe(6);
    expect(second.unsealedTail).toEqual({ entries: 3, firstSeq: 1, lastSeq: 3, latestExportedSeq: 0 });
    await second.close();
    expect(entries().map((e) => e.action)).toEqual(["run.submit", "run.submit", "run.submit", "audit.checkpoint", "audit.unsealed-tail", "audit.checkpoint", "audit.shutdown", "audit.checkpoint"]);
    expect((await verify()).ok).toBe(true);
  });
});

describe("failing closed", () => {
  it("append throws when the disk is full, and keeps refusing until reopened", async () => {
    const disk = new FullDiskFile(600);
    const log = await open({ openFile: disk.opener, checkpointEvery: 1000 });
    await log.append(event(1));
    const failed = await log.append(event(2, { data: { big: "x".repeat(1000) } })).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(AuditUnavailableError);
    expect((failed as Error).message).toMatch(/write failed: ENOSPC/);
    await expect(log.append(event(3))).rejects.toThrow(AuditUnavailableError);
    expect(log.unavailable).toBeInstanceOf(AuditUnavailableError);
  });

  it("every append of a batch whose sync fails is rejected", async () => {
    const disk = new FullDiskFile(1 << 20);
    const log = await open({ openFile: disk.opener, checkpointEvery: 1000 });
    disk.failSync = true;
    const results = await Promise.allSettled([log.append(event(1)), log.append(event(2)), log.append(event(3))]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/sync failed: EIO/);
  });

  it("append throws when the checkpoint sink cannot take the checkpoint (its directory is unusable)", async () => {
    const log = await open({ checkpointEvery: 3 });
    rmSync(cpDir(), { recursive: true, force: true });
    writeFileSync(cpDir(), "a file where the sink's directory was\n");
    await log.append(event(1));
    await log.append(event(2));
    await expect(log.append(event(3))).rejects.toThrow(/checkpoint export failed/);
    await expect(log.append(event(4))).rejects.toThrow(AuditUnavailableError);
  });

  it("a failing idle checkpoint closes the log to appends and is reported", async () => {
    let reported: unknown;
    const failing: CheckpointSink = { export: async () => Promise.reject(new Error("sink unreachable")), latest: async () => undefined };
    const log = await open({ sink: failing, checkpointEvery: 1000, onBackgroundError: (err) => (reported = err) });
    await log.append(event(1));
    clock.advance(60_000);
    await expect(log.whenIdle()).rejects.toThrow(/sink unreachable/);
    expect(reported).toBeInstanceOf(AuditUnavailableError);
    await expect(log.append(event(2))).rejects.toThrow(AuditUnavailableError);
  });

  it("refuses to open when the sink fails on the checkpoint sealing an existing log", async () => {
    const first = await open({ checkpointEvery: 1000 });
    await first.append(event(1));
    await first.whenIdle();
    // Simulate a crash: the entry is on disk with no checkpoint after it, and the writer is gone.
    rmSync(join(logDir(), "writer.lock"));
    const down = new DirectoryCheckpointSink(cpDir());
    down.export = () => Promise.reject(new Error("down"));
    await expect(open({ sink: down })).rejects.toThrow(/down/);
    // The failed open released its lock: a healthy sink opens the log and seals it.
    const third = await open();
    await third.append(event(2));
    await third.close();
    expect((await verify()).ok).toBe(true);
  });
});

describe("one writer per log", () => {
  it("refuses a second writer while the first holds the log, and admits one after close", async () => {
    const first = await open();
    await expect(open()).rejects.toThrow(/held by another writer \(pid \d+ on .*\): stop it first/);
    await first.close();
    const second = await open();
    await second.close();
  });

  it("takes over a lock left by a process that is gone", async () => {
    const { spawnSync } = await import("node:child_process");
    const { hostname } = await import("node:os");
    const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(logDir(), { recursive: true });
    writeFileSync(join(logDir(), "writer.lock"), JSON.stringify({ pid: Number(gone.stdout), host: hostname() }));
    const log = await open();
    expect((await log.append(event(1))).seq).toBe(1);
    await log.close();
  });
});

describe("the signing key", () => {
  it("is opened read-only and never changed by the writer", async () => {
    const before = createHash("sha256").update(readFileSync(keys.privateKeyPath)).digest("hex");
    const log = await open({ checkpointEvery: 2 });
    for (let i = 0; i < 6; i++) await log.append(event(i));
    await log.close();
    expect(createHash("sha256").update(readFileSync(keys.privateKeyPath)).digest("hex")).toBe(before);
    expect(statSync(keys.privateKeyPath).mode & 0o777).toBe(0o400);
  });

  it("refuses a key file anyone may write, or others may read", async () => {
    chmodSync(keys.privateKeyPath, 0o600);
    await expect(open()).rejects.toThrow(/is writable \(mode 0600\): the log writer must not be able to alter it; run 'chmod 400/);
    chmodSync(keys.privateKeyPath, 0o404);
    await expect(open()).rejects.toThrow(/readable by others \(mode 0404\).*chmod 400/);
  });

  it("refuses a missing key and a key that is not Ed25519", async () => {
    await expect(open({ signingKeyPath: join(dir, "absent.pem") })).rejects.toThrow(/cannot open the audit signing key/);
    const rsa = join(dir, "rsa.pem");
    writeFileSync(rsa, generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o400 });
    await expect(open({ signingKeyPath: rsa })).rejects.toThrow(/holds a rsa key: checkpoints are signed with Ed25519/);
  });
});

describe("verifyAuditLog", () => {
  async function writeLog(n: number, every = 5): Promise<void> {
    const log = await open({ checkpointEvery: every });
    for (let i = 0; i < n; i++) await log.append(event(i));
    await log.close();
  }
  const rewrite = (edit: (ls: string[]) => string[]) => writeFileSync(join(logDir(), "log.jsonl"), `${edit(lines()).join("\n")}\n`);

  it("reports an intact log with its counts", async () => {
    await writeLog(12);
    // 12 events, checkpoints at 6 and 12, the shutdown (15) and the final checkpoint (16).
    expect(await verify()).toMatchObject({ ok: true, entries: 16, lastSeq: 16, checkpointsInLog: 3, exportedCheckpoints: 3, exportedCheckpointsMatched: 3, unsealedEntries: 0, closedCleanly: true });
    const log = await open();
    await log.append(event(13));
    await log.whenIdle();
    expect(await verify()).toMatchObject({ ok: true, lastSeq: 19, unsealedEntries: 1, closedCleanly: false });
    await log.close();
  });

  it("names the first bad entry on modification, deletion, insertion, reordering and truncation", async () => {
    await writeLog(12);
    const original = lines();
    const reset = () => writeFileSync(join(logDir(), "log.jsonl"), `${original.join("\n")}\n`);

    rewrite((ls) => ls.map((l, i) => (i === 2 ? l.replace('"outcome":"success"', '"outcome":"denied"') : l)));
    expect((await verify()).firstBad).toMatchObject({ seq: 3, line: 3, reason: expect.stringMatching(/entry 3 was altered/) });
    reset();
    rewrite((ls) => ls.filter((_, i) => i !== 7));
    expect((await verify()).firstBad).toMatchObject({ seq: 8, line: 8, reason: expect.stringMatching(/entry 8 is missing/) });
    reset();
    rewrite((ls) => [...ls.slice(0, 4), ls[1]!, ...ls.slice(4)]);
    expect((await verify()).firstBad).toMatchObject({ seq: 5, reason: expect.stringMatching(/entry 2 appears after entry 4/) });
    reset();
    rewrite((ls) => [...ls.slice(0, 3), ls[4]!, ls[3]!, ...ls.slice(5)]);
    expect((await verify()).firstBad).toMatchObject({ seq: 4 });
    reset();
    rewrite((ls) => ls.slice(0, 9));
    expect((await verify()).firstBad).toMatchObject({ seq: 10, reason: expect.stringMatching(/ends at entry 9 but checkpoint .* was exported at entry 16: entries 10\.\.16 were removed/) });
    reset();
    writeFileSync(join(logDir(), "log.jsonl"), `${original.join("\n")}\n`.slice(0, -20));
    expect((await verify()).firstBad).toMatchObject({ seq: 16, reason: expect.stringMatching(/incomplete/) });
    reset();
    expect((await verify()).ok).toBe(true);
  });

  it("catches a rewritten chain through the checkpoints: re-hashing after an edit does not help", async () => {
    await writeLog(4, 1000);
    // Rebuild the whole chain after editing entry 2: every prev consistent, but the checkpoint signed the old head.
    const edited = entries().map((e) => (e.seq === 2 ? { ...e, outcome: "denied" as const } : e));
    const canonicalize = (await import("canonicalize")).default;
    let prev = GENESIS_HASH;
    const out: string[] = [];
    for (const e of edited) {
      const line = canonicalize({ ...e, prev })!;
      out.push(line);
      prev = chainHash(prev, Buffer.from(line));
    }
    writeFileSync(join(logDir(), "log.jsonl"), `${out.join("\n")}\n`);
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(report.firstBad!.reason).toMatch(/checkpoint entry 6 does not cover entry 5|differs from what exported checkpoint/);
  });

  it("refuses checkpoints signed by another key, and forged exported checkpoints", async () => {
    await writeLog(6);
    const other = generateSigningKeyPair(join(dir, "other-key"));
    const report = await verifyAuditLog(logDir(), { publicKey: loadPublicKey(other.publicKeyPath), checkpointsDir: cpDir() });
    expect(report.ok).toBe(false);
    expect(report.firstBad!.reason).toMatch(/signed by key .*not by the given public key/);
    const [file] = readdirSync(cpDir());
    const cp = JSON.parse(readFileSync(join(cpDir(), file!), "utf8")) as { hash: string };
    writeFileSync(join(cpDir(), file!), JSON.stringify({ ...cp, hash: "f".repeat(64) }));
    expect((await verify()).firstBad!.reason).toMatch(/has an invalid signature/);
  });
});
