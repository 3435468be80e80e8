import fc from "fast-check";
import type { KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuditLog,
  DirectoryCheckpointSink,
  generateSigningKeyPair,
  loadPublicKey,
  readExportedCheckpoints,
  verifyAuditStream,
  type AuditVerifyReport,
  type ExportedCheckpoints,
} from "../../runtime/security/audit/index.ts";
import { FakeClock } from "./audit-support.ts";

/** A realistic mix of entries: several tenants and actions, multi-byte text, nested data. */
function eventFor(i: number) {
  const tenants = ["studio", "research", "clinic"];
  const actions = ["run.submit", "artifact.read", "auth.failure", "schedule.place", "keys.rotate"];
  return {
    actor: i % 7 === 0 ? "agent" : `token:user-${i % 13}@${tenants[i % 3]}`,
    tenant: i % 11 === 0 ? null : tenants[i % 3]!,
    action: actions[i % 5]!,
    object: i % 5 === 2 ? null : `run/run-${Math.floor(i / 4)}`,
    outcome: (["success", "success", "denied", "failure"] as const)[i % 4]!,
    source: i % 7 === 0 ? null : `10.0.${i % 250}.${(i * 7) % 250}`,
    data: { i, note: i % 9 === 0 ? "café ☕ – 東京" : "ok", gpus: [i % 8, (i + 1) % 8], nested: { retry: i % 3, ok: i % 2 === 0 } },
  };
}

async function buildLog(dir: string, events: number, checkpointEvery: number) {
  const keys = generateSigningKeyPair(join(dir, "keys"));
  const clock = new FakeClock();
  const log = await AuditLog.open({ dir: join(dir, "audit"), signingKeyPath: keys.privateKeyPath, sink: new DirectoryCheckpointSink(join(dir, "checkpoints")), checkpointEvery, clock });
  for (let i = 0; i < events; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, events - i) }, (_, k) => log.append(eventFor(i + k))));
    clock.advance(1000);
  }
  await log.close();
  const bytes = readFileSync(join(dir, "audit", "log.jsonl"));
  return { bytes, publicKey: loadPublicKey(keys.publicKeyPath), exported: await readExportedCheckpoints(join(dir, "checkpoints")) };
}

function lineStarts(bytes: Buffer): number[] {
  const starts = [0];
  for (let at = bytes.indexOf(0x0a); at !== -1 && at + 1 < bytes.length; at = bytes.indexOf(0x0a, at + 1)) starts.push(at + 1);
  return starts;
}

function splitLines(bytes: Buffer): Buffer[] {
  const starts = lineStarts(bytes);
  return starts.map((s, i) => bytes.subarray(s, (starts[i + 1] ?? bytes.length) - 1));
}

const join_ = (lines: Buffer[]) => Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")]));

let dir: string;
let bytes: Buffer;
let publicKey: KeyObject;
let exported: ExportedCheckpoints;
let lines: Buffer[];
const check = (candidate: Buffer): Promise<AuditVerifyReport> => verifyAuditStream([candidate], { publicKey, exported });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-audit-prop-"));
  // 9,989 events, a checkpoint after every 999, the shutdown and its checkpoint: 10,000 entries, the last one a checkpoint.
  ({ bytes, publicKey, exported } = await buildLog(dir, 9989, 999));
  lines = splitLines(bytes);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("audit verify over a 10,000-entry log (fast-check)", () => {
  it("the untouched log verifies", async () => {
    expect(lines).toHaveLength(10_000);
    expect(await check(bytes)).toMatchObject({ ok: true, entries: 10_000, checkpointsInLog: 10, exportedCheckpoints: 10, exportedCheckpointsMatched: 10, unsealedEntries: 0 });
  });

  it("catches every single-byte change (anywhere, and in the last lines especially)", async () => {
    const lastLines = bytes.length - lines.at(-1)!.length - lines.at(-2)!.length - 2;
    const starts = lineStarts(bytes);
    const position = fc.oneof(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: lastLines, max: bytes.length - 1 }));
    await fc.assert(
      fc.asyncProperty(position, fc.integer({ min: 1, max: 255 }), async (at, delta) => {
        const changed = Buffer.from(bytes);
        changed[at] = (changed[at]! + delta) & 0xff;
        const report = await check(changed);
        expect(report.ok).toBe(false);
        // The first bad entry is the changed one, or (for a change a later link exposes) at most one after it.
        const changedSeq = starts.filter((s) => s <= at).length;
        expect(report.firstBad!.seq).toBeGreaterThanOrEqual(changedSeq - 1);
      }),
      { numRuns: 120 },
    );
  });

  it("catches every deletion of an entry", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: lines.length - 1 }), async (i) => {
        const report = await check(join_(lines.filter((_, k) => k !== i)));
        expect(report.ok).toBe(false);
        expect(report.firstBad!.seq).toBe(i + 1);
      }),
      { numRuns: 40 },
    );
  });

  it("catches every insertion: a copy of another entry, or a forged entry chained at that point", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: lines.length - 1 }), fc.integer({ min: 0, max: lines.length - 1 }), fc.boolean(), async (at, from, forge) => {
        let inserted = lines[from]!;
        if (forge) {
          // Well-formed, with the right seq and prev for its position: the entries after it no longer fit.
          const before = at === 0 ? undefined : (JSON.parse(lines[at - 1]!.toString()) as { seq: number });
          const next = JSON.parse(lines[at]!.toString()) as { prev: string };
          const forged = { ...(JSON.parse(lines[from]!.toString()) as object), seq: (before?.seq ?? 0) + 1, prev: next.prev, action: "run.cancel" };
          inserted = Buffer.from(JSON.stringify(forged));
        }
        const report = await check(join_([...lines.slice(0, at), inserted, ...lines.slice(at)]));
        expect(report.ok).toBe(false);
        expect(report.firstBad!.seq).toBeLessThanOrEqual(at + 2);
      }),
      { numRuns: 40 },
    );
  });

  it("catches every swap of two entries", async () => {
    const pair = fc.uniqueArray(fc.integer({ min: 0, max: lines.length - 1 }), { minLength: 2, maxLength: 2 });
    await fc.assert(
      fc.asyncProperty(pair, async ([a, b]) => {
        const swapped = [...lines];
        [swapped[a!], swapped[b!]] = [swapped[b!]!, swapped[a!]!];
        const report = await check(join_(swapped));
        expect(report.ok).toBe(false);
        expect(report.firstBad!.seq).toBeLessThanOrEqual(Math.min(a!, b!) + 1);
      }),
      { numRuns: 40 },
    );
  });

  it("catches every truncation past an exported checkpoint, mid-line or at a line boundary", async () => {
    const boundaries = lineStarts(bytes);
    const cut = fc.oneof(fc.integer({ min: 0, max: bytes.length - 1 }), fc.constantFrom(...boundaries));
    await fc.assert(
      fc.asyncProperty(cut, async (length) => {
        const report = await check(bytes.subarray(0, length));
        expect(report.ok).toBe(false);
        expect(report.firstBad!.reason).toMatch(/truncated|incomplete/);
      }),
      { numRuns: 40 },
    );
  });
});

describe("audit verify, exhaustively over a small log", () => {
  it("catches a change to every byte, a deletion of every line, and truncation at every line and mid-line", async () => {
    const small = mkdtempSync(join(tmpdir(), "gpufabric-audit-small-"));
    try {
      const log = await buildLog(small, 12, 5);
      const verifySmall = (candidate: Buffer) => verifyAuditStream([candidate], { publicKey: log.publicKey, exported: log.exported });
      expect((await verifySmall(log.bytes)).ok).toBe(true);
      for (let at = 0; at < log.bytes.length; at++) {
        const changed = Buffer.from(log.bytes);
        changed[at] ^= 0x01;
        expect((await verifySmall(changed)).ok, `byte ${at}`).toBe(false);
      }
      const smallLines = splitLines(log.bytes);
      for (let i = 0; i < smallLines.length; i++) expect((await verifySmall(join_(smallLines.filter((_, k) => k !== i)))).ok, `line ${i}`).toBe(false);
      const cuts = [...lineStarts(log.bytes), ...Array.from({ length: Math.ceil(log.bytes.length / 7) }, (_, k) => k * 7)];
      for (const length of cuts) expect((await verifySmall(log.bytes.subarray(0, length))).ok, `cut ${length}`).toBe(false);
    } finally {
      rmSync(small, { recursive: true, force: true });
    }
  });
});
