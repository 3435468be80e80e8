import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog, auditPaths, DirectoryCheckpointSink, generateSigningKeyPair } from "../../runtime/security/audit/index.ts";
import { runCli } from "../support/cli.ts";


const gpufabric = runCli;

let dataDir: string;
let logFile: string;
let original: string;
beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "gpufabric-audit-cli-"));
  const paths = auditPaths(dataDir);
  generateSigningKeyPair(join(dataDir, "audit-signing"));
  const log = await AuditLog.open({ dir: paths.logDir, signingKeyPath: paths.signingKeyPath, sink: new DirectoryCheckpointSink(paths.checkpointsDir), checkpointEvery: 4 });
  for (let i = 0; i < 10; i++) await log.append({ actor: "token:ci@studio", tenant: "studio", action: "artifact.read", object: `artifact/${i}`, outcome: "success", source: "10.1.2.3" });
  await log.close();
  logFile = join(paths.logDir, "log.jsonl");
  original = readFileSync(logFile, "utf8");
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("gpufabric audit verify", () => {
  it("exits 0 on an intact log, with text or JSON", () => {
    const text = gpufabric("audit", "verify", "--data-dir", dataDir);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^audit log intact: 14 entries \(last seq 14\), 3 checkpoints in the log, 3\/3 exported checkpoints matched, 0 entries after the last checkpoint\n$/);
    const json = gpufabric("audit", "verify", "--data-dir", dataDir, "--json");
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, entries: 14, exportedCheckpoints: 3, unsealedEntries: 0, closedCleanly: true, sealed: true, passed: true });
  });

  it("exits 1 naming the first bad entry when an entry was altered", () => {
    try {
      writeFileSync(logFile, original.replace('"object":"artifact/6"', '"object":"artifact/7"'));
      const text = gpufabric("audit", "verify", "--data-dir", dataDir);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/^audit log NOT intact: first bad entry seq 8 \(line 8\): .*entry 8 was altered/);
      // Entry 8 is on line 8 (the one edited), though the break shows on line 9, whose prev no longer matches.
      expect(original.split("\n")[7]).toContain('"object":"artifact/6"');
      const json = JSON.parse(gpufabric("audit", "verify", "--data-dir", dataDir, "--json").stdout);
      expect(json).toMatchObject({ ok: false, firstBad: { seq: 8, line: 8 } });
    } finally {
      writeFileSync(logFile, original);
    }
  });

  it("exits 1 on truncation past an exported checkpoint, found through --checkpoints", () => {
    try {
      writeFileSync(logFile, `${original.split("\n").slice(0, 6).join("\n")}\n`);
      const result = gpufabric("audit", "verify", "--data-dir", dataDir, "--checkpoints", auditPaths(dataDir).checkpointsDir);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/first bad entry seq 7 \(line 7\): the log ends at entry 6 but checkpoint .* was exported at entry 14: entries 7\.\.14 were removed \(truncated\)/);
    } finally {
      writeFileSync(logFile, original);
    }
  });

  it("counts the entries after the last checkpoint; --require-sealed fails on them; the sink's copies prove a cut the data directory's copy hides", () => {
    const paths = auditPaths(dataDir);
    const offsite = join(dataDir, "..", `${dataDir.split("/").at(-1)}-sink-copy`);
    cpSync(paths.checkpointsDir, offsite, { recursive: true }); // the exported copies, out of the data directory
    const checkpoint14 = join(paths.checkpointsDir, "checkpoint-000000000014.json");
    try {
      // Cut the final checkpoint line and delete its copy from the data directory: what is left chains and matches.
      writeFileSync(logFile, `${original.split("\n").slice(0, 12).join("\n")}\n`);
      renameSync(checkpoint14, `${checkpoint14}.hidden`);
      const plain = gpufabric("audit", "verify", "--data-dir", dataDir);
      expect(plain.code).toBe(0);
      expect(plain.stdout).toMatch(/^audit log intact: 12 entries .*, 2 entries after the last checkpoint\nnote: entries 11\.\.12 follow the last checkpoint: chained but not yet signed/);
      expect(plain.stdout).toMatch(/\nnote: the log does not end with a clean shutdown \(audit\.shutdown and its checkpoint\)/);
      const sealed = gpufabric("audit", "verify", "--data-dir", dataDir, "--require-sealed");
      expect(sealed.code).toBe(1);
      expect(sealed.stdout).toMatch(/\nNOT sealed \(--require-sealed\): entries 11\.\.12 follow the last checkpoint; no signature covers them/);
      const json = gpufabric("audit", "verify", "--data-dir", dataDir, "--require-sealed", "--json");
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, unsealedEntries: 2, lastCheckpointSeq: 10, sealed: false, requireSealed: true, passed: false });
      const proven = gpufabric("audit", "verify", "--data-dir", dataDir, "--checkpoints", offsite, "--json");
      expect(proven.code).toBe(1);
      expect(JSON.parse(proven.stdout)).toMatchObject({ ok: false, latestExportedSeq: 14, firstBad: { seq: 13, reason: expect.stringMatching(/ends at entry 12 but .* exported at entry 14/) } });
    } finally {
      renameSync(`${checkpoint14}.hidden`, checkpoint14);
      rmSync(offsite, { recursive: true, force: true });
      writeFileSync(logFile, original);
    }
  });

  it("exits 2 for a missing public key or checkpoints directory, 1 for a missing log", () => {
    expect(gpufabric("audit", "verify", "--data-dir", dataDir, "--public-key", join(dataDir, "nope.pem")).code).toBe(2);
    expect(gpufabric("audit", "verify", "--data-dir", dataDir, "--checkpoints", join(dataDir, "nope")).code).toBe(2);
    const missing = gpufabric("audit", "verify", "--data-dir", join(dataDir, "elsewhere"), "--public-key", auditPaths(dataDir).publicKeyPath);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no audit log at .*elsewhere/);
  });
});
