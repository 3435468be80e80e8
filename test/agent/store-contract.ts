/**
 * What every Store implementation must do, whatever database is under it: the embedded SQLite store
 * runs these, and so will a PostgreSQL store. Only the Store interface is used here.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import { TransitionError, type Store } from "../../runtime/agent/store/index.ts";
import { diamondRun, stage } from "./fixtures/runs.ts";
import { usageContractCases } from "./store-usage-contract.ts";
import { stageTimesContractCases } from "./store-stage-times-contract.ts";
import { listRunsContractCases } from "./store-list-contract.ts";

export interface StoreHarness {
  /** A fresh, empty store. */
  open(): Promise<Store>;
  /** The same database again, after the previous store was closed (as after a restart). */
  reopen(): Promise<Store>;
  /** Removes what open() created. */
  cleanup(): Promise<void>;
}

async function runStage(
  s: Store,
  runId: string,
  stageId: string,
  artifacts = [{ name: `${stageId}.txt`, bytes: 3, sha256: "ab".repeat(32), path: `/x/${stageId}.txt` }]
) {
  const attempt = await s.markPlaced({ runId, stageId, gpus: ["gpu-0"], explanation: { why: "test" } });
  await s.markRunning(attempt.id, { pid: 1234, workspace: `/ws/${stageId}` });
  await s.markSealing(attempt.id, { exitCode: 0 });
  return s.markSucceeded(attempt.id, { exitCode: 0, peakVramMiB: 900, artifacts });
}

export function describeStoreContract(name: string, harness: StoreHarness): void {
  describe(`${name}: the Store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await harness.open();
    });
    afterEach(async () => {
      await store.close();
      await harness.cleanup();
    });

    usageContractCases(() => store);
    stageTimesContractCases(() => store);
    listRunsContractCases(() => store);

    it("runs a diamond to success: dependents become ready only when all their needs succeeded", async () => {
      const { run, created } = await store.createRun(diamondRun("studio"));
      expect(created).toBe(true);
      expect(run.status).toBe("queued");
      expect((await store.readyStages()).map((r) => r.stage.stageId)).toEqual(["a"]);

      await runStage(store, run.id, "a");
      expect((await store.readyStages()).map((r) => r.stage.stageId).sort()).toEqual(["b", "c"]);
      await runStage(store, run.id, "b");
      expect((await store.readyStages()).map((r) => r.stage.stageId)).toEqual(["c"]);
      await runStage(store, run.id, "c");
      expect((await store.readyStages()).map((r) => r.stage.stageId)).toEqual(["d"]);
      await runStage(store, run.id, "d");

      const detail = (await store.getRun("studio", run.id))!;
      expect(detail.run.status).toBe("succeeded");
      expect(detail.stages.map((s) => [s.stageId, s.status, s.attempts])).toEqual([
        ["a", "succeeded", 1],
        ["b", "succeeded", 1],
        ["c", "succeeded", 1],
        ["d", "succeeded", 1],
      ]);
      expect(detail.attempts.every((a) => a.status === "succeeded" && a.exitCode === 0 && a.peakVramMiB === 900)).toBe(true);
      expect(detail.artifacts.map((a) => a.name)).toEqual(["a.txt", "b.txt", "c.txt", "d.txt"]);
      expect(detail.inputs).toEqual({ seed: 7 });
      expect((await store.artifactsOf(run.id, ["b", "c"])).map((a) => a.path)).toEqual(["/x/b.txt", "/x/c.txt"]);

      const events = (await store.eventsSince("studio", run.id, 0))!;
      expect(events[0]!.type).toBe("run.accepted");
      expect(events[events.length - 1]!.type).toBe("run.succeeded");
      const ids = events.map((e) => e.id);
      expect([...ids].sort((x, y) => x - y)).toEqual(ids);
      const tail = (await store.eventsSince("studio", run.id, ids[5]!))!;
      expect(tail.map((e) => e.id)).toEqual(ids.slice(6));
    });

    it("keeps the stage spec whole for the executor", async () => {
      const { run } = await store.createRun({
        ...diamondRun("studio"),
        stages: [stage("only", [], { run: { command: ["node", "-e", "1"], env: { A: "b" } }, estimate: { durationS: 3, modelLoadS: 1 } })],
      });
      const [ready] = await store.readyStages();
      expect(ready!.runId).toBe(run.id);
      expect(ready!.stage.spec.run?.command).toEqual(["node", "-e", "1"]);
      expect(ready!.stage.spec.estimate).toEqual({ durationS: 3, modelLoadS: 1 });
    });

    it("is idempotent on tenant + key, and keys are scoped per tenant", async () => {
      const first = await store.createRun(diamondRun("studio", "key-1"));
      const again = await store.createRun(diamondRun("studio", "key-1"));
      expect(again.created).toBe(false);
      expect(again.run.id).toBe(first.run.id);
      const other = await store.createRun(diamondRun("research", "key-1"));
      expect(other.created).toBe(true);
      expect(other.run.id).not.toBe(first.run.id);
      expect(await store.listRuns("studio")).toHaveLength(1);
      expect((await store.queueDepth()).activeRuns).toBe(2);
    });

    it("keeps the subject that submitted a run, and refuses a malformed one", async () => {
      const { run } = await store.createRun({ ...diamondRun("studio"), submittedBy: "alice" });
      expect(run.submittedBy).toBe("alice");
      expect((await store.getRun("studio", run.id))!.run.submittedBy).toBe("alice");
      expect((await store.listRuns("studio")).find((r) => r.id === run.id)!.submittedBy).toBe("alice");
      const { run: anonymous } = await store.createRun(diamondRun("studio"));
      expect(anonymous.submittedBy).toBeNull();
      await expect(store.createRun({ ...diamondRun("studio"), submittedBy: "bad\u0000name" })).rejects.toThrow(/submittedBy/);
    });

    it("isolates tenants: another tenant's run is not found, cannot be cancelled, has no events", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      expect(await store.getRun("research", run.id)).toBeUndefined();
      expect(await store.cancelRun("research", run.id)).toBeUndefined();
      expect(await store.eventsSince("research", run.id, 0)).toBeUndefined();
      expect(await store.listRuns("research")).toEqual([]);
      expect((await store.getRun("studio", run.id))!.run.status).toBe("queued");
    });

    it("rejects invalid runs with the field at fault", async () => {
      const bad = { ...diamondRun("studio"), stages: [stage("a", ["zz"]), stage("a")] };
      const err = await store.createRun(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      const fields = (err as ValidationError).issues.map((i) => i.field);
      expect(fields).toContain("stages[1].id");
      expect(fields).toContain("stages[0].needs[0]");

      const cyclic = { ...diamondRun("studio"), stages: [stage("a", ["b"]), stage("b", ["a"])] };
      await expect(store.createRun(cyclic)).rejects.toThrow(/cycle/);
      await expect(store.createRun({ ...diamondRun("studio"), tenant: "Not A Tenant" })).rejects.toThrow(/tenant/);
      await expect(store.createRun({ ...diamondRun("studio"), idempotencyKey: "has space" })).rejects.toThrow(/idempotencyKey/);
      expect((await store.queueDepth()).activeRuns).toBe(0);
    });

    it("refuses malformed executor reports with the field at fault", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      await expect(store.markPlaced({ runId: run.id, stageId: "a", gpus: [""], explanation: null })).rejects.toThrow(/gpus\[0\]: must be a device id/);
      const a = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
      await expect(store.markRunning(a.id, { pid: -5, workspace: "/ws" })).rejects.toThrow(/pid: must be a whole number of 1 or more/);
      await store.markRunning(a.id, { pid: 5, workspace: "/ws" });
      await store.markSealing(a.id, { exitCode: 0, peakVramMiB: 100 });
      const err = await store
        .markSucceeded(a.id, { artifacts: [{ name: "../up", bytes: -1, sha256: "xyz", path: "" }] })
        .catch((e: unknown) => e as ValidationError);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.field)).toEqual([
        "artifacts[0].name",
        "artifacts[0].bytes",
        "artifacts[0].sha256",
        "artifacts[0].path",
      ]);
      expect((await store.getRun("studio", run.id))!.attempts[0]!.status).toBe("sealing");
    });

    it("refuses transitions that do not apply, leaving the state as it was", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      await expect(store.markPlaced({ runId: run.id, stageId: "d", gpus: ["g"], explanation: null })).rejects.toBeInstanceOf(TransitionError);
      const attempt = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
      // Succeeded straight from placed would skip committing outputs.
      await expect(store.markSucceeded(attempt.id, { artifacts: [] })).rejects.toThrow(/placed, not sealing/);
      await expect(store.markSealing(attempt.id)).rejects.toThrow(/placed, not running/);
      await store.markRunning(attempt.id, { pid: 1, workspace: "/ws" });
      await expect(store.markRunning(attempt.id, { pid: 1, workspace: "/ws" })).rejects.toBeInstanceOf(TransitionError);
      const detail = (await store.getRun("studio", run.id))!;
      expect(detail.stages[0]!.status).toBe("running");
      expect(detail.attempts[0]!.status).toBe("running");
    });

    it("retries a failed stage as a new attempt, or fails the run and cancels what cannot run", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      const first = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
      await store.markRunning(first.id, { pid: 1, workspace: "/ws/1" });
      await store.markFailed(first.id, { reason: "exit code 3", exitCode: 3, retry: true });
      expect((await store.readyStages()).map((r) => r.stage.stageId)).toEqual(["a"]);
      const second = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
      expect(second.number).toBe(2);
      await store.markRunning(second.id, { pid: 2, workspace: "/ws/2" });
      await store.markFailed(second.id, { reason: "exit code 3", exitCode: 3, retry: false });

      const detail = (await store.getRun("studio", run.id))!;
      expect(detail.run.status).toBe("failed");
      expect(detail.stages.map((s) => s.status)).toEqual(["failed", "cancelled", "cancelled", "cancelled"]);
      expect(detail.attempts.map((a) => [a.number, a.status, a.exitCode])).toEqual([
        [1, "failed", 3],
        [2, "failed", 3],
      ]);
      expect(await store.readyStages()).toEqual([]);
    });

    it("cancels a run: open attempts are closed and returned so their processes can be stopped", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      await runStage(store, run.id, "a");
      const b = await store.markPlaced({ runId: run.id, stageId: "b", gpus: ["g0"], explanation: null });
      await store.markRunning(b.id, { pid: 4242, workspace: "/ws/b" });

      const result = (await store.cancelRun("studio", run.id))!;
      expect(result.cancelled).toBe(true);
      expect(result.run.status).toBe("cancelled");
      expect(result.stoppedAttempts.map((a) => [a.stageId, a.pid, a.status])).toEqual([["b", 4242, "cancelled"]]);
      const detail = (await store.getRun("studio", run.id))!;
      expect(detail.stages.map((s) => s.status)).toEqual(["succeeded", "cancelled", "cancelled", "cancelled"]);
      // The executor reporting back after the cancel is a stale transition, not a state change.
      await expect(store.markSealing(b.id)).rejects.toThrow(/already closed \(cancelled\)/);
      expect((await store.cancelRun("studio", run.id))!.cancelled).toBe(false);
      expect(await store.readyStages()).toEqual([]);
    });

    it("recovers open attempts as interrupted and reruns their stages as new attempts", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      await runStage(store, run.id, "a");
      const b = await store.markPlaced({ runId: run.id, stageId: "b", gpus: ["g0"], explanation: null });
      await store.markRunning(b.id, { pid: 10, workspace: "/ws/b1" });
      const c = await store.markPlaced({ runId: run.id, stageId: "c", gpus: ["g1"], explanation: null });
      await store.markRunning(c.id, { pid: 11, workspace: "/ws/c1" });
      await store.markSealing(c.id, { exitCode: 0 });
      await store.close();

      store = await harness.reopen();
      const report = await store.recover();
      expect(report.requeuedStages).toBe(2);
      expect(report.interrupted.map((a) => [a.stageId, a.status, a.pid]).sort()).toEqual([
        ["b", "interrupted", 10],
        ["c", "interrupted", 11],
      ]);
      expect((await store.readyStages()).map((r) => r.stage.stageId).sort()).toEqual(["b", "c"]);
      const b2 = await runStage(store, run.id, "b");
      expect(b2.number).toBe(2);
      await runStage(store, run.id, "c");
      await runStage(store, run.id, "d");
      expect((await store.getRun("studio", run.id))!.run.status).toBe("succeeded");
      expect((await store.recover()).interrupted).toEqual([]);
    });

    it("counts the queue per tenant", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      await store.createRun(diamondRun("research"));
      const a = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
      await store.markRunning(a.id, { pid: 1, workspace: "/ws" });
      const depth = await store.queueDepth();
      expect(depth.activeRuns).toBe(2);
      expect(depth.stages).toEqual({ waiting: 6, ready: 1, placed: 0, running: 1, sealing: 0 });
      expect(depth.byTenant.studio).toEqual({ waiting: 3, ready: 0, placed: 0, running: 1, sealing: 0, activeRuns: 1 });
      expect(depth.byTenant.research).toEqual({ waiting: 3, ready: 1, placed: 0, running: 0, sealing: 0, activeRuns: 1 });
    });

    it("keeps concurrent writes independent: one failing write is undone whole, the others are applied", async () => {
      const { run } = await store.createRun(diamondRun("studio"));
      const a = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
      await store.markRunning(a.id, { pid: 1, workspace: "/ws" });
      await store.markSealing(a.id);
      const results = await Promise.allSettled([
        store.createRun(diamondRun("studio", "k1")),
        // Fails after its first writes (closing the attempt, the first artifact): all of them are undone.
        store.markSucceeded(a.id, {
          artifacts: [
            { name: "x.png", bytes: 1, sha256: "0".repeat(64), path: "/a/x.png" },
            { name: "x.png", bytes: 1, sha256: "0".repeat(64), path: "/a/x2.png" },
          ],
        }),
        store.markPlaced({ runId: run.id, stageId: "d", gpus: ["g"], explanation: null }),
        store.createRun(diamondRun("studio", "k2")),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
      expect(((results[1] as PromiseRejectedResult).reason as ValidationError).issues).toEqual([
        { field: "artifacts[1].name", message: "duplicate name 'x.png': each output of a stage has its own name" },
      ]);
      expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(TransitionError);
      expect(await store.listRuns("studio")).toHaveLength(3);
      const detail = (await store.getRun("studio", run.id))!;
      expect(detail.attempts[0]!.status).toBe("sealing");
      expect(detail.stages[0]!.status).toBe("sealing");
      expect(detail.artifacts).toEqual([]);
      // The stage can still succeed properly afterwards.
      await store.markSucceeded(a.id, { artifacts: [{ name: "x.png", bytes: 1, sha256: "0".repeat(64), path: "/a/x.png" }] });
      expect(
        (await store.readyStages())
          .filter((r) => r.runId === run.id)
          .map((r) => r.stage.stageId)
          .sort()
      ).toEqual(["b", "c"]);
    });
  });
}
