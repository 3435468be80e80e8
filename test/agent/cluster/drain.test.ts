/**
 * Draining in the leader's worker registry, with a real scheduler: a draining worker's GPUs leave placement
 * at once while its attempt runs to its end and completes (nothing interrupted); it may leave only once it
 * holds nothing, and is then forgotten without a lease expiry.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Scheduler } from "../../../runtime/scheduler/scheduler.ts";
import type { AuditEvent } from "../../../runtime/security/audit/index.ts";
import type { WorkerRegistry } from "../../../runtime/agent/cluster/registry.ts";
import { DrainRequestSchema } from "../../../runtime/agent/cluster/protocol.ts";
import { attemptSpec, openRegistry, registerRequest as join0, type RegistryHarness } from "./registry-fixture.ts";

const spec = attemptSpec();

describe("draining a worker", () => {
  let harness: RegistryHarness;
  let scheduler: Scheduler;
  let registry: WorkerRegistry;
  let audit: AuditEvent[];

  beforeEach(() => {
    harness = openRegistry({ prefix: "gpufabric-drain-", epoch: 3 });
    ({ scheduler, registry, audit } = harness);
  });
  afterEach(() => harness.close());

  it("takes its GPUs out of placement at once, lets its attempt complete, and forgets it when it leaves", async () => {
    const a = registry.register("worker-a", join0("n1"));
    registry.register("worker-b", join0("n0"));
    const started = registry.assign(spec);
    const { assignments } = await registry.poll("worker-a", { workerId: a.workerId, running: [], waitMs: 2000 });
    const token = assignments[0]!.token;
    registry.started("worker-a", "att-1", { workerId: a.workerId, token, pid: 7, workspace: null });
    const handle = await started;

    expect(registry.drain("worker-a", { workerId: a.workerId, phase: "draining" })).toEqual({ attempts: 1 });
    // n1's GPUs (2, 3) take nothing new; n0's stay in service.
    expect([0, 1, 2, 3].map((i) => scheduler.isOnline(i))).toEqual([true, true, false, false]);
    expect(registry.workers().find((w) => w.node === "n1")).toMatchObject({ draining: true, attempts: 1 });
    // Saying it twice changes nothing.
    expect(registry.drain("worker-a", { workerId: a.workerId, phase: "draining" })).toEqual({ attempts: 1 });
    expect(audit.filter((e) => e.action === "cluster.worker.drain")).toHaveLength(1);

    // It may not leave while the leader counts an attempt as its own.
    expect(() => registry.drain("worker-a", { workerId: a.workerId, phase: "left" })).toThrow(/still holds 1 attempt/);
    // A draining worker still heartbeats and reports: the attempt completes.
    await registry.poll("worker-a", { workerId: a.workerId, running: ["att-1"], waitMs: 0 });
    registry.finished("worker-a", "att-1", { workerId: a.workerId, token, outcome: { exitCode: 0, signal: null, reason: "completed", message: "ok", simulated: true }, artifacts: [] });
    expect((await handle.done).reason).toBe("completed");

    expect(registry.drain("worker-a", { workerId: a.workerId, phase: "left" })).toEqual({ attempts: 0 });
    expect(registry.workers().map((w) => w.node)).toEqual(["n0"]);
    expect(() => registry.poll("worker-a", { workerId: a.workerId, running: [], waitMs: 0 })).toThrow(/register again/);
    // Forgotten, not lost: no lease expiry follows, and its node is free for the next worker.
    registry.sweep(Date.now() + 500);
    expect(audit.some((e) => e.action === "cluster.worker.lost")).toBe(false);
    expect(audit.filter((e) => e.action === "cluster.worker.left")).toHaveLength(1);
    expect(registry.register("worker-c", join0("fresh")).node).toBe("n1");
    expect([2, 3].map((i) => scheduler.isOnline(i))).toEqual([true, true]);
  });

  it("refuses a drain from a worker it does not know, and a phase it does not define", () => {
    expect(() => registry.drain("worker-a", { workerId: "nobody", phase: "draining" })).toThrow(/register again/);
    expect(DrainRequestSchema.safeParse({ workerId: "w", phase: "gone" }).success).toBe(false);
  });
});
