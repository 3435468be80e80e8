/**
 * `gpufabric dev --workers auto --max-workers 2 --scale-down-cooldown 1 --once --json`: the examples on a
 * local cluster that starts with no worker; workers come up for the queue (never more than 2), every
 * example succeeds, and the workers drain back to zero before the command stops the cluster.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startLocalPostgres } from "../../../runtime/agent/cluster/local-postgres.ts";
import { REPO_ROOT } from "../service/harness.ts";

const probe = await startLocalPostgres();
const unavailable = "unavailable" in probe ? probe.unavailable : undefined;
if (!("unavailable" in probe)) await probe.stop();
if (unavailable) console.warn(`note: gpufabric dev --workers auto skipped: ${unavailable}`);

describe.runIf(unavailable === undefined)("gpufabric dev --workers auto", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-dev-elastic-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("scales from zero for the examples, at most --max-workers, and back to zero after the cooldown", () => {
    const args = ["bin/gpufabric.mjs", "dev", "--workers", "auto", "--max-workers", "2", "--scale-down-cooldown", "1", "--control-planes", "1", "--once", "--json", "--data-dir", dataDir];
    const result = spawnSync(process.execPath, args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 240_000 });
    expect(result.status, `${result.stderr}\n${readFileSync(join(dataDir, "logs", "scaler.log"), "utf8").slice(-3000)}`).toBe(0);
    const summary = JSON.parse(result.stdout) as { ok: boolean; runs: Array<{ status: string }>; elastic: { maxWorkers: number; peakWorkers: number; workersStarted: number; drainedToZero: boolean } };
    expect(summary.ok).toBe(true);
    for (const run of summary.runs) expect(run.status).toBe("succeeded");
    expect(summary.elastic.maxWorkers).toBe(2);
    expect(summary.elastic.peakWorkers).toBeGreaterThanOrEqual(1);
    expect(summary.elastic.peakWorkers).toBeLessThanOrEqual(2);
    expect(summary.elastic.drainedToZero).toBe(true);
    expect(result.stderr).toMatch(/workers: 0 up, 0 starting, 0 draining/);
  }, 300_000);

  it("refuses --max-workers without --workers auto, naming the fix", () => {
    const result = spawnSync(process.execPath, ["bin/gpufabric.mjs", "dev", "--workers", "2", "--max-workers", "3", "--data-dir", join(dataDir, "refused")], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/--max-workers and --scale-down-cooldown go with --workers auto/);
  }, 150_000);
});
