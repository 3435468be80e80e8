/**
 * The leader's worker registry with a real scheduler and a real keyring: node binding, hand-out by long
 * poll, reports fenced by the attempt token, key requests limited to an attempt's own objects, and the
 * loss of a worker.
 */
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Scheduler } from "../../../runtime/scheduler/scheduler.ts";
import { wrapAad, type FileKeyring } from "../../../runtime/security/crypto/index.ts";
import type { AuditEvent } from "../../../runtime/security/audit/index.ts";
import type { WorkerRegistry } from "../../../runtime/agent/cluster/registry.ts";
import { ApiError } from "../../../runtime/agent/service/api-error.ts";
import { attemptSpec as spec, openRegistry, registerRequest as join0, type RegistryHarness } from "./registry-fixture.ts";

describe("the worker registry", () => {
  let harness: RegistryHarness;
  let dir: string;
  let keys: FileKeyring;
  let scheduler: Scheduler;
  let registry: WorkerRegistry;
  let audit: AuditEvent[];

  beforeEach(() => {
    harness = openRegistry({ prefix: "gpufabric-registry-", epoch: 7 });
    ({ dir, keys, scheduler, registry, audit } = harness);
  });
  afterEach(() => harness.close());

  it("keeps every GPU out of service until a worker serves its node, binding a worker to the node of its name", () => {
    for (let i = 0; i < 4; i++) expect(scheduler.isOnline(i)).toBe(false);
    const r = registry.register("worker-a", join0("n1"));
    expect(r).toMatchObject({ epoch: 7, leaseMs: 1000, node: "n1", devices: [{ index: 0, id: "n1-g0" }, { index: 1, id: "n1-g1" }] });
    expect([0, 1, 2, 3].map((i) => scheduler.isOnline(i))).toEqual([false, false, true, true]);
    // A worker of another name takes the free node; a third finds the pool full.
    expect(registry.register("worker-b", join0("k8s-node-xyz")).node).toBe("n0");
    expect(() => registry.register("worker-c", join0("other"))).toThrow(/every node of pool 'p' already has a worker/);
    expect(audit.filter((e) => e.action === "cluster.worker.join")).toHaveLength(2);
    expect(harness.changes()).toBe(2);
  });

  it("hands an attempt out on the worker's waiting poll, and resolves it from the worker's reports", async () => {
    const { workerId } = registry.register("worker-a", join0("n1"));
    const waiting = registry.poll("worker-a", { workerId, running: [], waitMs: 5000 });
    const started = registry.assign(spec());
    const response = await waiting;
    expect(response.epoch).toBe(7);
    expect(response.assignments).toHaveLength(1);
    const a = response.assignments[0]!;
    expect(a).toMatchObject({ attemptId: "att-1", epoch: 7, runId: "run-1", tenant: "studio", number: 1, gpus: [{ id: "n1-g0", index: 0 }] });
    registry.started("worker-a", "att-1", { workerId, token: a.token, pid: 4242, workspace: "/w" });
    const handle = await started;
    expect(handle.pid).toBe(4242);
    // An output must lie where the attempt writes: another stage's folder is refused.
    expect(() =>
      registry.finished("worker-a", "att-1", {
        workerId,
        token: a.token,
        outcome: { exitCode: 0, signal: null, reason: "completed", message: "ok", simulated: true },
        artifacts: [{ name: "x.png", bytes: 1, sha256: "0".repeat(64), path: "artifacts/run-1/other/1/x.png" }],
      })
    ).toThrow(/must lie at artifacts\/run-1\/render\/1\/x.png/);
    registry.finished("worker-a", "att-1", {
      workerId,
      token: a.token,
      outcome: { exitCode: 0, signal: null, reason: "completed", message: "ok", simulated: true },
      artifacts: [{ name: "x.png", bytes: 1, sha256: "0".repeat(64), path: "artifacts/run-1/render/1/x.png" }],
    });
    expect((await handle.done).reason).toBe("completed");
    expect(await handle.commitOutputs()).toEqual([{ name: "x.png", bytes: 1, sha256: "0".repeat(64), path: join(dir, "shared", "artifacts", "run-1", "render", "1", "x.png") }]);
    // The attempt is over: a late report with its token is stale.
    expect(() => registry.started("worker-a", "att-1", { workerId, token: a.token, pid: 1, workspace: null })).toThrow(ApiError);
  });

  it("carries the attempt's trace context in its assignment (none when the attempt has none), for the worker's stage process", async () => {
    const { workerId } = registry.register("worker-a", join0("n1"));
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const first = registry.poll("worker-a", { workerId, running: [], waitMs: 5000 });
    void registry.assign(spec({ trace: { traceparent } }));
    expect((await first).assignments[0]?.trace).toEqual({ traceparent });
    const second = registry.poll("worker-a", { workerId, running: ["att-1"], waitMs: 5000 });
    void registry.assign(spec({ attemptId: "att-2", stageId: "other", gpus: [{ id: "n1-g1", uuid: null, simulated: true }] }));
    const [plain] = (await second).assignments;
    expect(plain?.attemptId).toBe("att-2");
    expect(plain).not.toHaveProperty("trace");
  });

  it("refuses reports with a token it did not hand out, or from another worker", async () => {
    const a0 = registry.register("worker-a", join0("n1"));
    const b0 = registry.register("worker-b", join0("n0"));
    void registry.assign(spec());
    const { assignments } = await registry.poll("worker-a", { workerId: a0.workerId, running: [], waitMs: 2000 });
    const token = assignments[0]!.token;
    expect(() => registry.started("worker-a", "att-1", { workerId: a0.workerId, token: "x".repeat(32), pid: 1, workspace: null })).toThrow(/no open attempt of this worker holds that token/);
    expect(() => registry.started("worker-b", "att-1", { workerId: b0.workerId, token, pid: 1, workspace: null })).toThrow(/no open attempt/);
    expect(() => registry.started("worker-a", "att-2", { workerId: a0.workerId, token, pid: 1, workspace: null })).toThrow(/no open attempt/);
  });

  it("wraps keys only for the attempt's own outputs and logs, and unwraps only its inputs", async () => {
    const { workerId } = registry.register("worker-a", join0("n1"));
    const input = join(dir, "shared", "artifacts", "run-1", "prompt", "2", "scenes.json");
    void registry.assign(spec({ inputs: [{ stageId: "prompt", artifacts: [{ name: "scenes.json", path: input }] }] }));
    const { assignments } = await registry.poll("worker-a", { workerId, running: [], waitMs: 2000 });
    const a = assignments[0]!;
    expect(a.inputs).toEqual([{ stageId: "prompt", name: "scenes.json", path: "artifacts/run-1/prompt/2/scenes.json" }]);
    const version = await keys.currentVersion();
    const aad = (objectId: string, run = "run-1", tenant = "studio") => wrapAad({ tenant, run, objectId }, version).toString("base64");
    const dataKey = Buffer.alloc(32, 7).toString("base64");
    const ask = (op: "wrap" | "unwrap", objectId: string, key = dataKey, run?: string, tenant?: string) =>
      registry.key("worker-a", { workerId, token: a.token, op, version, aad: aad(objectId, run, tenant), key });

    const wrapped = await ask("wrap", "artifact/render/1/out.png");
    expect(Buffer.from(wrapped.key, "base64").length).toBeGreaterThan(32);
    await ask("wrap", "log/render/1.stdout.log");
    await expect(ask("wrap", "artifact/other/1/out.png")).rejects.toThrow(/may not wrap/);
    await expect(ask("wrap", "artifact/render/2/out.png")).rejects.toThrow(/may not wrap/);
    await expect(ask("wrap", "artifact/render/1/a/b")).rejects.toThrow(/may not wrap/);
    await expect(ask("wrap", "artifact/render/1/out.png", dataKey, "run-2")).rejects.toThrow(/another tenant, run or key version/);
    await expect(ask("wrap", "artifact/render/1/out.png", dataKey, "run-1", "rival")).rejects.toThrow(/another tenant, run or key version/);
    // Its input's key opens; an output's (wrapped above) is not the attempt's to read.
    const inputKey = await keys.wrap(Buffer.alloc(32, 9), version, wrapAad({ tenant: "studio", run: "run-1", objectId: "artifact/prompt/2/scenes.json" }, version));
    const opened = await ask("unwrap", "artifact/prompt/2/scenes.json", Buffer.from(inputKey).toString("base64"));
    expect(Buffer.from(opened.key, "base64")).toEqual(Buffer.alloc(32, 9));
    await expect(ask("unwrap", "artifact/render/1/out.png", wrapped.key)).rejects.toThrow(/may not unwrap/);
    expect(audit.filter((e) => e.outcome === "denied" && e.action.startsWith("cluster.key"))).toHaveLength(4);
  });

  it("loses a worker that misses its lease: its GPUs leave service and its attempts end interrupted", async () => {
    const { workerId } = registry.register("worker-a", join0("n1"));
    const started = registry.assign(spec());
    const { assignments } = await registry.poll("worker-a", { workerId, running: [], waitMs: 2000 });
    registry.started("worker-a", "att-1", { workerId, token: assignments[0]!.token, pid: 7, workspace: null });
    const handle = await started;
    registry.sweep(Date.now() + 1001);
    const outcome = await handle.done;
    expect(outcome.reason).toBe("interrupted");
    expect(outcome.message).toMatch(/worker on node 'n1' was lost/);
    expect([scheduler.isOnline(2), scheduler.isOnline(3)]).toEqual([false, false]);
    expect(audit.some((e) => e.action === "cluster.worker.lost")).toBe(true);
    // The lost worker must register again before it can poll.
    expect(() => registry.poll("worker-a", { workerId, running: [], waitMs: 0 })).toThrow(/register again/);
  });

  it("ends an attempt the worker stopped listing, and asks it to stop attempts this leader does not know", async () => {
    const { workerId } = registry.register("worker-a", join0("n1"));
    const started = registry.assign(spec());
    expect((await registry.poll("worker-a", { workerId, running: [], waitMs: 2000 })).assignments).toHaveLength(1);
    // The next poll does not list the attempt handed out by the previous one: the worker never got it.
    const next = await registry.poll("worker-a", { workerId, running: ["from-an-earlier-leader"], waitMs: 0 });
    expect(next.cancel).toEqual(["from-an-earlier-leader"]);
    expect((await (await started).done).reason).toBe("interrupted");
  });

  it("ends at once, interrupted, an attempt placed on a node whose worker was lost meanwhile", async () => {
    registry.register("worker-a", join0("n1"));
    registry.sweep(Date.now() + 1001);
    // The scheduler placed it before it heard of the loss: nothing waits for a worker that is gone.
    const handle = await registry.assign(spec());
    const outcome = await handle.done;
    expect(outcome.reason).toBe("interrupted");
    expect(outcome.message).toMatch(/no worker serves node 'n1'/);
  });

  it("ends every attempt it handed out when it closes (the leader steps down), so the loop can stop", async () => {
    const { workerId } = registry.register("worker-a", join0("n1"));
    const started = registry.assign(spec());
    expect((await registry.poll("worker-a", { workerId, running: [], waitMs: 2000 })).assignments).toHaveLength(1);
    registry.close();
    expect((await (await started).done).message).toMatch(/stopped leading/);
  });
});
