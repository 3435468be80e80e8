import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { openSqliteStore, type RunDetail, type SqliteStore } from "../../runtime/agent/store/index.ts";
import { diamondRun } from "./fixtures/runs.ts";

const writer = fileURLToPath(new URL("./fixtures/store-crash-writer.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "gpufabric-crash-"));
const dbFile = join(dir, "agent.db");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Accepted {
  id: string;
  tenant: string;
  key: string;
}

/** Runs the writer until it has reported `count` accepted runs, then kills it with SIGKILL mid-loop. */
function acceptThenKill(firstKey: number, count: number): Promise<Accepted[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", writer, dbFile, String(firstKey)], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    const accepted: Accepted[] = [];
    let buffer = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop()!; // a partial last line is not an acknowledgement
      for (const line of lines) {
        const [word, id, tenant, key] = line.split(" ");
        if (word === "accepted") accepted.push({ id: id!, tenant: tenant!, key: key! });
      }
      if (accepted.length >= count && child.exitCode === null && !child.killed) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve(accepted);
      else reject(new Error(`writer exited on its own (code ${code}) before it was killed:\n${stderr}`));
    });
  });
}

/** Every invariant a run must hold whenever the store is at rest (after recover). */
function checkConsistent(detail: RunDetail): void {
  const status = new Map(detail.stages.map((s) => [s.stageId, s.status]));
  for (const stage of detail.stages) {
    const where = `run ${detail.run.id} stage ${stage.stageId}`;
    expect(["placed", "running", "sealing"], where).not.toContain(stage.status);
    const attempts = detail.attempts.filter((a) => a.stageId === stage.stageId);
    expect(
      attempts.map((a) => a.number),
      where
    ).toEqual(attempts.map((_, i) => i + 1));
    expect(stage.attempts, where).toBe(attempts.length);
    const succeeded = attempts.filter((a) => a.status === "succeeded");
    expect(succeeded.length, where).toBe(stage.status === "succeeded" ? 1 : 0);
    const artifacts = detail.artifacts.filter((a) => a.stageId === stage.stageId);
    expect(artifacts.length, where).toBe(stage.status === "succeeded" ? 1 : 0);
    if (stage.status === "succeeded") expect(artifacts[0]!.attemptId, where).toBe(succeeded[0]!.id);
    const needsDone = stage.needs.every((n) => status.get(n) === "succeeded");
    if (stage.status === "ready") expect(needsDone, where).toBe(true);
    if (stage.status === "waiting") expect(needsDone, where).toBe(false);
  }
  expect(detail.attempts.filter((a) => ["placed", "running", "sealing"].includes(a.status))).toEqual([]);
  const allSucceeded = detail.stages.every((s) => s.status === "succeeded");
  expect(detail.run.status === "succeeded", `run ${detail.run.id}`).toBe(allSucceeded);
}

/** Drives every ready stage to success until nothing is left to run; stages advance concurrently, as on many GPUs. */
async function drainToCompletion(store: SqliteStore): Promise<void> {
  for (let ready = await store.readyStages(); ready.length > 0; ready = await store.readyStages()) {
    await Promise.all(
      ready.map(async (r) => {
        const a = await store.markPlaced({ runId: r.runId, stageId: r.stage.stageId, gpus: ["gpu-0"], explanation: null });
        await store.markRunning(a.id, { pid: 1, workspace: "/ws" });
        await store.markSealing(a.id, { exitCode: 0 });
        await store.markSucceeded(a.id, { exitCode: 0, artifacts: [{ name: `${a.stageId}.out`, bytes: 1, sha256: "0".repeat(64), path: `/a/${a.id}` }] });
      })
    );
  }
}

describe("SqliteStore survives kill -9", () => {
  it("keeps every accepted run, consistent, across repeated crashes, and completes each exactly once", async () => {
    const accepted: Accepted[] = [];
    let interruptedTotal = 0;
    for (const [round, count] of [
      [0, 60],
      [1, 150],
      [2, 300],
    ] as const) {
      accepted.push(...(await acceptThenKill(round * 100_000, count)));
      const store = openSqliteStore(dbFile);
      const db = new Database(dbFile, { readonly: true });
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
      db.close();
      const report = await store.recover();
      interruptedTotal += report.interrupted.length;
      for (const run of accepted) {
        const detail = await store.getRun(run.tenant, run.id);
        expect(detail, `accepted run ${run.id}`).toBeDefined();
        expect(detail!.run.idempotencyKey).toBe(run.key);
        checkConsistent(detail!);
      }
      await store.close();
    }
    // The writer always holds attempts open, so each crash left some to recover.
    expect(interruptedTotal).toBeGreaterThan(0);

    const store = openSqliteStore(dbFile);
    await drainToCompletion(store);
    for (const run of accepted) {
      const detail = (await store.getRun(run.tenant, run.id))!;
      checkConsistent(detail);
      expect(detail.run.status).toBe("succeeded");
      // Resubmitting an accepted run after the crashes returns it, not a duplicate.
      const again = await store.createRun(diamondRun(run.tenant, run.key));
      expect(again).toMatchObject({ created: false, run: { id: run.id } });
    }
    expect((await store.queueDepth()).activeRuns).toBe(0);
    await store.close();
  });
});
