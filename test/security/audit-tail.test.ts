/**
 * The audit log's tail: what follows the last signed checkpoint. Each way of hiding entries there is either
 * found by verify (with the exported checkpoints, or --require-sealed) or refused when the writer reopens the
 * log; the one thing no design without a copy elsewhere can find (a crashed writer's unsealed tail dropped
 * whole) is pinned down here as the README states it.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import canonicalize from "canonicalize";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AuditLog,
  chainHash,
  AuditTailError,
  checkpointFileName,
  CheckpointSinkConflictError,
  DirectoryCheckpointSink,
  generateSigningKeyPair,
  loadPublicKey,
  signCheckpoint,
  loadSigningKey,
  keyId,
  verifyAuditLog,
  type AuditEvent,
} from "../../runtime/security/audit/index.ts";
import { FakeClock } from "./audit-support.ts";

let dir: string;
let keys: { privateKeyPath: string; publicKeyPath: string };
let clock: FakeClock;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-audit-tail-"));
  keys = generateSigningKeyPair(join(dir, "audit-signing"));
  clock = new FakeClock();
  mkdirSync(join(dir, "sink")); // a mounted volume: there before the first export
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const event = (i: number): AuditEvent => ({ actor: "token:ci@studio", tenant: "studio", action: "run.submit", object: `run/run-${i}`, outcome: "success", source: "10.0.0.7", data: { i } });
const logDir = () => join(dir, "audit");
const logPath = () => join(logDir(), "log.jsonl");
const sinkDir = () => join(dir, "sink");
const open = (options: Partial<Parameters<typeof AuditLog.open>[0]> = {}) =>
  AuditLog.open({ dir: logDir(), signingKeyPath: keys.privateKeyPath, sink: new DirectoryCheckpointSink(sinkDir()), checkpointEvery: 5, checkpointIntervalMs: 60_000, clock, ...options });
const lines = () => readFileSync(logPath(), "utf8").trimEnd().split("\n");
const writeLines = (ls: readonly string[]) => writeFileSync(logPath(), ls.length ? `${ls.join("\n")}\n` : "");
const verify = (checkpointsDir: string | null = sinkDir()) => verifyAuditLog(logDir(), { publicKey: loadPublicKey(keys.publicKeyPath), ...(checkpointsDir !== null && { checkpointsDir }) });
const isCheckpoint = (line: string) => line.includes('"action":"audit.checkpoint"');

/** A writer that stops cleanly: every entry ends up under a checkpoint, the last line is one. */
async function sealedLog(events: number, every = 5): Promise<string[]> {
  const log = await open({ checkpointEvery: every });
  for (let i = 0; i < events; i++) await log.append(event(i));
  await log.close();
  return lines();
}

/** A writer that crashes (kill -9) with `unsealed` entries after its last checkpoint, all of them on disk. */
async function crashedLog(sealedEvents: number, unsealed: number): Promise<string[]> {
  const log = await open({ checkpointEvery: 1_000_000 });
  for (let i = 0; i < sealedEvents; i++) await log.append(event(i));
  clock.advance(60_000); // the interval checkpoint signs and exports those
  await log.whenIdle();
  // Concurrent, as requests are: one group commit rather than one sync each (the order of seqs is the call order).
  await Promise.all(Array.from({ length: unsealed }, (_, i) => log.append(event(sealedEvents + i))));
  rmSync(join(logDir(), "writer.lock")); // the writer is gone without sealing
  return lines();
}

describe("checkpoints are signed by count, by time and at shutdown, each exported at once", () => {
  it("every checkpoint entry of the log is in the sink as soon as the append that made it resolves", async () => {
    const log = await open({ checkpointEvery: 3 });
    for (let i = 1; i <= 7; i++) {
      await log.append(event(i));
      const inLog = lines().filter(isCheckpoint).length;
      expect(readdirSync(sinkDir()).filter((n) => n.startsWith("checkpoint-"))).toHaveLength(inLog);
    }
    clock.advance(60_000); // by time
    await log.whenIdle();
    await log.append(event(8));
    await log.close(); // at shutdown
    const all = lines();
    expect(isCheckpoint(all.at(-1)!)).toBe(true);
    const exported = readdirSync(sinkDir()).filter((n) => n.startsWith("checkpoint-")).sort();
    // Each exported checkpoint covers its own checkpoint entry.
    expect(exported).toEqual(all.flatMap((l, i) => (isCheckpoint(l) ? [checkpointFileName(i + 1)] : [])));
    expect(await verify()).toMatchObject({ ok: true, unsealedEntries: 0, latestExportedSeq: all.length });
  });
});

describe("truncating the last 1–61 lines of a stopped writer's log", () => {
  it("is found by verify with the exported checkpoints, and refused at reopen, for every count; --require-sealed alone finds every cut not on a checkpoint line", async () => {
    const original = await sealedLog(60); // 74 lines: a checkpoint every 6th, the shutdown and its checkpoint
    expect(original).toHaveLength(74);
    for (let cut = 1; cut <= 61; cut++) {
      const kept = original.slice(0, -cut);
      writeLines(kept);
      const report = await verify();
      expect(report.ok, `cut ${cut}`).toBe(false);
      expect(report.firstBad!.reason).toBe(`the log ends at entry ${kept.length} but checkpoint ${join(sinkDir(), checkpointFileName(74))} was exported at entry 74: entries ${kept.length + 1}..74 were removed (truncated)`);
      // Without the sink's copies, only a cut that leaves entries after the last checkpoint shows.
      const alone = await verify(null);
      expect(alone.ok).toBe(true);
      expect(alone.unsealedEntries > 0, `cut ${cut}`).toBe(!isCheckpoint(kept.at(-1)!));
      const refused = await open().catch((err: unknown) => err);
      expect(refused, `cut ${cut}`).toBeInstanceOf(AuditTailError);
      expect((refused as Error).message).toMatch(new RegExp(`^refusing to open the audit log: the log ends at entry ${kept.length} but checkpoint .* was exported at entry 74: .*restore log\\.jsonl from a copy that reaches entry 74 intact`));
      expect(lines()).toEqual(kept); // nothing signed over it
    }
  });
});

describe("truncating the log and deleting the exported checkpoints beyond the cut", () => {
  it("is proven by the sink's own copies, whatever the data directory's copy says", async () => {
    const original = await sealedLog(20);
    const copy = join(dir, "data-dir-copy"); // the copy an attacker with the data directory can edit
    cpSync(sinkDir(), copy, { recursive: true });
    // Cut right after a checkpoint entry, so that the log looks sealed, and delete the copies beyond the cut.
    const cutAt = original.findIndex((l, i) => isCheckpoint(l) && i >= 10) + 1;
    writeLines(original.slice(0, cutAt));
    for (const name of readdirSync(copy)) if (Number(/\d+/.exec(name)![0]) > cutAt) rmSync(join(copy, name));
    expect(await verify(copy)).toMatchObject({ ok: true, unsealedEntries: 0 }); // all of it in reach: nothing to compare with
    const report = await verify(sinkDir());
    expect(report).toMatchObject({ ok: false, lastSeq: cutAt, latestExportedSeq: original.length });
    expect(report.firstBad!.reason).toMatch(new RegExp(`ends at entry ${cutAt} but .* exported at entry ${original.length}: entries ${cutAt + 1}\\.\\.${original.length} were removed`));
    await expect(open()).rejects.toThrow(AuditTailError);
    // Even emptied, the log is refused: the sink says entries existed.
    writeLines([]);
    await expect(open()).rejects.toThrow(/the log is empty but checkpoint .* was exported at entry 26: entries 1\.\.26 were removed/);
  });

  it("a writer that carries on from a cut log cannot overwrite the sink's checkpoints for the same entries", async () => {
    const sink = new DirectoryCheckpointSink(sinkDir());
    const key = loadSigningKey(keys.privateKeyPath);
    const id = keyId(key);
    const first = signCheckpoint({ seq: 7, hash: "a".repeat(64), time: "2026-01-01T00:00:00.000Z" }, key, id);
    await sink.export(first);
    await sink.export(first); // the same checkpoint again (an export retried) is accepted
    const other = signCheckpoint({ seq: 7, hash: "b".repeat(64), time: "2026-01-01T00:00:01.000Z" }, key, id);
    await expect(sink.export(other)).rejects.toThrow(CheckpointSinkConflictError);
    await expect(sink.export(other)).rejects.toThrow(/already holds a different checkpoint .*checkpoint-000000000007\.json/);
    expect(JSON.parse(readFileSync(join(sinkDir(), checkpointFileName(7)), "utf8"))).toMatchObject({ hash: "a".repeat(64) });
    expect(readdirSync(sinkDir())).toEqual([checkpointFileName(7)]); // no temporary file left behind
    expect(await sink.latest()).toMatchObject({ seq: 7, hash: "a".repeat(64) });
  });
});

describe("entries after the last signed checkpoint", () => {
  it("edited or deleted while the writer runs: its next checkpoint signs what it wrote, so verify finds the change", async () => {
    for (const tamper of ["edit", "delete", "truncate"] as const) {
      rmSync(logDir(), { recursive: true, force: true });
      rmSync(sinkDir(), { recursive: true, force: true });
      const log = await open({ checkpointEvery: 1000 });
      for (let i = 0; i < 5; i++) await log.append(event(i));
      const ls = lines();
      if (tamper === "edit") ls[2] = ls[2]!.replace('"outcome":"success"', '"outcome":"denied"');
      if (tamper === "delete") ls.splice(2, 1);
      writeLines(tamper === "truncate" ? ls.slice(0, 3) : ls);
      await log.append(event(9));
      await log.close();
      const report = await verify();
      expect(report.ok, tamper).toBe(false);
    }
  });

  it("after a crash, verify reports them and --require-sealed's count is exact; the restart verifies, seals and records them", async () => {
    const crashed = await crashedLog(4, 7);
    expect(await verify()).toMatchObject({ ok: true, lastSeq: 12, lastCheckpointSeq: 5, latestExportedSeq: 5, unsealedEntries: 7 });
    const log = await open();
    expect(log.unsealedTail).toEqual({ entries: 7, firstSeq: 6, lastSeq: 12, latestExportedSeq: 5 });
    await log.close();
    const after = lines().map((l) => JSON.parse(l) as { action: string; actor: string; data: unknown });
    expect(lines().slice(0, 12)).toEqual(crashed);
    expect(after.slice(12).map((e) => e.action)).toEqual(["audit.checkpoint", "audit.unsealed-tail", "audit.checkpoint", "audit.shutdown", "audit.checkpoint"]);
    expect(after[13]).toMatchObject({ actor: "gpufabric-audit", data: { entries: 7, firstSeq: 6, lastSeq: 12, latestExportedSeq: 5 } });
    expect(await verify()).toMatchObject({ ok: true, unsealedEntries: 0 });
  });

  it("after a crash, an edited, deleted, inserted or reordered unsealed entry, or a cut into the sealed part, is refused at reopen", async () => {
    const crashed = await crashedLog(4, 7); // lines 1..5 sealed and exported, 6..12 unsealed
    const cases: Array<[string, (ls: string[]) => string[], RegExp]> = [
      ["edit", (ls) => ls.map((l, i) => (i === 7 ? l.replace('"outcome":"success"', '"outcome":"denied"') : l)), /entry 8 was altered/],
      ["delete", (ls) => ls.filter((_, i) => i !== 8), /entry 9 is missing/],
      ["insert", (ls) => [...ls.slice(0, 9), ls[6]!, ...ls.slice(9)], /entry 7 appears after entry 9/],
      ["reorder", (ls) => [...ls.slice(0, 6), ls[7]!, ls[6]!, ...ls.slice(8)], /entry 7 is missing|entry 8 appears/],
      ["edit the anchor", (ls) => ls.map((l, i) => (i === 4 ? l.replace(/"time":"[^"]+"/, '"time":"2020-01-01T00:00:00.000Z"') : l)), /differs from what exported checkpoint .*signed/],
      ["cut into the sealed part", (ls) => ls.slice(0, 3), /ends at entry 3 but checkpoint .* was exported at entry 5/],
      ["garbage line", (ls) => [...ls.slice(0, 10), "not json", ...ls.slice(10)], /line 11 is not JSON/],
    ];
    for (const [what, edit, reason] of cases) {
      const tampered = edit([...crashed]);
      writeLines(tampered);
      const refused = await open().catch((err: unknown) => err);
      expect(refused, what).toBeInstanceOf(AuditTailError);
      expect((refused as Error).message, what).toMatch(reason);
      expect(lines(), what).toEqual(tampered);
    }
    writeLines(crashed);
    await (await open()).close();
  });

  it("the limit the README states: a crashed writer's last unsealed entry altered, or its unsealed tail dropped whole, before the restart", async () => {
    const crashed = await crashedLog(4, 3);
    // Both leave a log that chains and matches the sink: nothing signed covers what changed.
    writeLines([...crashed.slice(0, -1), crashed.at(-1)!.replace('"outcome":"success"', '"outcome":"denied"')]);
    expect((await verify()).ok).toBe(true);
    writeLines(crashed.slice(0, 5));
    expect(await verify()).toMatchObject({ ok: true, unsealedEntries: 0 });
    // What stays visible: the restart records that the last session ended without its shutdown checkpoint
    // (with nothing unsealed here), and the log has no audit.shutdown where the session ended.
    const log = await open();
    expect(log.unsealedTail).toEqual({ entries: 0, firstSeq: 6, lastSeq: 5, latestExportedSeq: 5 });
    await log.close();
    expect(lines().slice(5, 7).map((l) => JSON.parse(l).action)).toEqual(["audit.unsealed-tail", "audit.checkpoint"]);
    expect(JSON.parse(lines()[5]!).data).toMatchObject({ entries: 0 });
    expect(await verify()).toMatchObject({ ok: true, unsealedEntries: 0, closedCleanly: true });
  });

  it("finds the anchor far back: a crash leaving a 2,000-entry tail (several reads from the end)", async () => {
    const crashed = await crashedLog(10, 2000);
    expect(readFileSync(logPath()).length).toBeGreaterThan(4 * 64 * 1024);
    const tampered = crashed.map((l, i) => (i === 20 ? l.replace('"outcome":"success"', '"outcome":"failure"') : l));
    writeLines(tampered);
    await expect(open()).rejects.toThrow(/entry 21 was altered/);
    writeLines(crashed);
    const log = await open();
    expect(log.unsealedTail).toMatchObject({ entries: 2000, firstSeq: 12 });
    await log.close();
    expect((await verify()).ok).toBe(true);
  });
});

/** `ls` with entries appended that chain correctly: what anyone who can write the log can make, without the key. */
function forgeAfter(ls: readonly string[], added: ReadonlyArray<{ actor: string; action: string; data: Record<string, unknown> }>): string[] {
  const out = [...ls];
  for (const fields of added) {
    const last = JSON.parse(out.at(-1)!) as { seq: number; prev: string };
    const entry = { seq: last.seq + 1, time: "2026-01-01T01:00:00.000Z", tenant: null, object: null, outcome: "success", source: null, ...fields, prev: chainHash(last.prev, Buffer.from(out.at(-1)!)) };
    out.push(canonicalize(entry)!);
  }
  return out;
}

describe("entries added to a cleanly closed log", () => {
  it("are found by verify, even without the sink, and refused at reopen: only a new session's signed start record may follow a shutdown", async () => {
    const sealed = await sealedLog(7);
    expect(sealed.slice(-2).map((l) => JSON.parse(l).action)).toEqual(["audit.shutdown", "audit.checkpoint"]);
    const forged = forgeAfter(sealed, [{ actor: "token:ci@studio", action: "run.cancel", data: {} }]);
    writeLines(forged);
    for (const report of [await verify(null), await verify()]) {
      expect(report).toMatchObject({ ok: false, firstBad: { seq: sealed.length + 1 } });
      expect(report.firstBad!.reason).toMatch(new RegExp(`follows the checkpoint that sealed a clean shutdown \\(entry ${sealed.length}\\) but is not a new session's start record: it was added while no writer ran`));
    }
    await expect(open()).rejects.toThrow(/refusing to open the audit log: .*added while no writer ran/);
    expect(lines()).toEqual(forged);

    // A forged start record needs a checkpoint after it, and only the key signs one.
    const earlier = JSON.parse(sealed.find(isCheckpoint)!) as { data: Record<string, unknown> };
    const withStart = forgeAfter(sealed, [
      { actor: "gpufabric-audit", action: "audit.start", data: { after: sealed.length } },
      { actor: "gpufabric-audit", action: "audit.checkpoint", data: earlier.data },
      { actor: "token:ci@studio", action: "run.cancel", data: {} },
    ]);
    writeLines(withStart);
    expect((await verify(null)).ok).toBe(false);
    await expect(open()).rejects.toThrow(AuditTailError);
    // A start record must name the checkpoint it continues from, and nothing else.
    writeLines(forgeAfter(sealed, [{ actor: "gpufabric-audit", action: "audit.start", data: { after: sealed.length, note: "all is well" } }]));
    expect((await verify(null)).firstBad!.reason).toMatch(/is not a new session's start record/);
    // A start record alone (nothing after it to hide) is what a crash mid-start leaves: taken as an unsealed tail.
    writeLines(forgeAfter(sealed, [{ actor: "gpufabric-audit", action: "audit.start", data: { after: sealed.length } }]));
    const log = await open();
    expect(log.unsealedTail).toMatchObject({ entries: 1 });
    await log.close();
    expect((await verify()).ok).toBe(true);
  });

  it("a session started after a clean close and then crashed is continued: its start record was signed", async () => {
    await sealedLog(3);
    const session = await open({ checkpointEvery: 1000 });
    for (let i = 0; i < 4; i++) await session.append(event(100 + i));
    await session.whenIdle();
    rmSync(join(logDir(), "writer.lock")); // crashed
    const actions = lines().map((l) => JSON.parse(l).action as string);
    expect(actions.slice(3)).toEqual(["audit.shutdown", "audit.checkpoint", "audit.start", "audit.checkpoint", "run.submit", "run.submit", "run.submit", "run.submit"]);
    expect(await verify()).toMatchObject({ ok: true, unsealedEntries: 4, closedCleanly: false });
    const next = await open();
    expect(next.unsealedTail).toMatchObject({ entries: 4, firstSeq: 8, lastSeq: 11 });
    await next.close();
    expect(await verify()).toMatchObject({ ok: true, unsealedEntries: 0, closedCleanly: true });
  });
});

describe("the sink's latest checkpoint at reopen", () => {
  it("refuses one that is malformed, forged or signed by another key, and a torn last line is cut only once the rest verifies", async () => {
    const crashed = await crashedLog(4, 2);
    const latest = join(sinkDir(), checkpointFileName(5));
    const good = readFileSync(latest, "utf8");
    writeFileSync(latest, "{");
    await expect(open()).rejects.toThrow(/the latest exported checkpoint .*checkpoint-000000000005\.json is malformed: not JSON/);
    writeFileSync(latest, good.replace(/"hash":"[0-9a-f]{64}"/, `"hash":"${"f".repeat(64)}"`));
    await expect(open()).rejects.toThrow(/has an invalid signature/);
    const other = generateSigningKeyPair(join(dir, "other"));
    const forged = signCheckpoint(JSON.parse(good) as { seq: number; hash: string; time: string }, loadSigningKey(other.privateKeyPath), keyId(loadSigningKey(other.privateKeyPath)));
    writeFileSync(latest, JSON.stringify(forged));
    await expect(open()).rejects.toThrow(/was signed by key [0-9a-f]{16}, not by this writer's signing key/);
    writeFileSync(latest, good);

    // A torn write after an altered entry: refused, and the torn bytes stay for the investigation.
    const torn = `${[...crashed.slice(0, 5), crashed[5]!.replace("run-4", "run-9"), crashed[6]!].join("\n")}\n{"action":"run.sub`;
    writeFileSync(logPath(), torn);
    await expect(open()).rejects.toThrow(AuditTailError);
    expect(readFileSync(logPath(), "utf8")).toBe(torn);
    writeFileSync(logPath(), `${crashed.join("\n")}\n{"action":"run.sub`);
    const log = await open();
    await log.close();
    expect(lines().slice(0, 7)).toEqual(crashed);
    expect((await verify()).ok).toBe(true);
  });

  it("with an empty sink, verifies the whole log from its first entry", async () => {
    const crashed = await crashedLog(4, 2);
    rmSync(sinkDir(), { recursive: true });
    mkdirSync(sinkDir());
    writeLines(crashed.map((l, i) => (i === 1 ? l.replace("run-1", "run-7") : l)));
    await expect(open()).rejects.toThrow(/entry 2 was altered/);
    writeLines(crashed);
    const log = await open();
    expect(log.unsealedTail).toEqual({ entries: 2, firstSeq: 6, lastSeq: 7, latestExportedSeq: 0 });
    await log.close();
  });
});
