/**
 * The demand controller over fake sources and a fake scaler (the control-plane test, elastic-cluster.test.ts,
 * runs it in a real control plane against the Kubernetes stand-in).
 */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { controlPlaneSources, DemandController, poolShape, type WaitingStage, type WorkerView } from "../../../runtime/agent/cluster/elastic/controller.ts";
import type { WorkerScaler } from "../../../runtime/agent/cluster/elastic/scaler.ts";
import { ElasticitySchema, PlatformConfigSchema, type PoolConfig } from "../../../runtime/config/schema.ts";

const logger = pino({ level: "silent" });

function pool(nodes = 4, gpusPerNode = 1, memoryMiB = 24_576): PoolConfig {
  const devices = Array.from({ length: nodes * gpusPerNode }, (_, i) => ({ id: `p-n${Math.floor(i / gpusPerNode)}-g${i % gpusPerNode}`, node: `p-n${Math.floor(i / gpusPerNode)}`, index: i % gpusPerNode, memoryMiB }));
  return {
    name: "p",
    gpu: { model: "L4", product: "NVIDIA-L4", memoryMiB },
    nodes,
    gpusPerNode,
    sharing: { mode: "exclusive" },
    devices,
    nodeSelector: {},
    priorityClasses: { interactive: "i", batch: "b" },
    tenantQuotas: {},
  };
}

class FakeScaler implements WorkerScaler {
  readonly kind = "local" as const;
  calls: number[] = [];
  fail: string | null = null;
  constructor(public replicas = 0) {}
  async current(): Promise<number> {
    return this.replicas;
  }
  async scaleTo(_pool: string, n: number): Promise<void> {
    if (this.fail) throw new Error(this.fail);
    this.calls.push(n);
    this.replicas = n;
  }
}

const stage = (id: string, over: Partial<WaitingStage> = {}): WaitingStage => ({ runId: `run-${id}`, stageId: id, tenant: "studio", gpus: 1, vramMiB: 8000, priority: "interactive", ...over });

function setup(options: { elasticity?: Record<string, unknown>; scaler?: FakeScaler; pool?: PoolConfig } = {}) {
  let nowMs = 1_000_000;
  const state = { workers: [] as WorkerView[], waiting: [] as WaitingStage[] };
  const scaler = options.scaler ?? new FakeScaler();
  const controller = new DemandController({
    pool: options.pool ?? pool(),
    elasticity: ElasticitySchema.parse({ enabled: true, scaleDownCooldownSeconds: 60, ...options.elasticity }),
    headroomMiB: 1024,
    sources: { workers: () => state.workers, waiting: () => state.waiting },
    scaler,
    logger,
    now: () => nowMs,
  });
  return { controller, scaler, state, advance: (s: number) => (nowMs += s * 1000) };
}

describe("DemandController", () => {
  it("scales from zero for waiting interactive stages, counts asked-for replicas as starting, and asks once", async () => {
    const { controller, scaler, state } = setup();
    state.waiting = [stage("a"), stage("b")];
    const first = await controller.tick();
    expect(first).toMatchObject({ desired: 2, current: 0, ready: 0, starting: 0, requested: 0, provider: "local", scalerError: null });
    expect(first.breakdown.interactiveWorkers).toBe(2);
    expect(scaler.calls).toEqual([2]);
    // The pods are pending: asked for, not registered. They are the capacity to come; nothing more is asked.
    const second = await controller.tick();
    expect(second).toMatchObject({ desired: 2, current: 2, starting: 2, requested: 2 });
    expect(scaler.calls).toEqual([2]);
    // They register; the stages run.
    state.waiting = [];
    state.workers = [
      { workerId: "w0", gpus: 1, gpusBusy: 1, draining: false },
      { workerId: "w1", gpus: 1, gpusBusy: 1, draining: false },
    ];
    expect(await controller.tick()).toMatchObject({ desired: 2, ready: 2, starting: 0 });
    expect(scaler.calls).toEqual([2]);
  });

  it("lets idle workers go only after the cooldown of continuous surplus, down to minWorkers", async () => {
    const { controller, scaler, state, advance } = setup({ scaler: new FakeScaler(3), elasticity: { minWorkers: 1 } });
    state.workers = ["w0", "w1", "w2"].map((id) => ({ workerId: id, gpus: 1, gpusBusy: 0, draining: false }));
    expect((await controller.tick()).desired).toBe(3);
    advance(59);
    expect((await controller.tick()).desired).toBe(3);
    expect(scaler.calls).toEqual([]);
    advance(2);
    const after = await controller.tick();
    expect(after.desired).toBe(1);
    expect(scaler.calls).toEqual([1]);
    // A worker told to go drains: it is not counted, and nothing is asked again.
    state.workers = state.workers.map((w, i) => ({ ...w, draining: i > 0 }));
    expect(await controller.tick()).toMatchObject({ desired: 1, ready: 1, draining: 2, starting: 0 });
    expect(scaler.calls).toEqual([1]);
  });

  it("never scales for a busy worker's way out, and never above max (the pool's nodes by default)", async () => {
    const { controller, scaler, state } = setup({ scaler: new FakeScaler(1) });
    state.workers = [{ workerId: "w0", gpus: 1, gpusBusy: 1, draining: false }];
    state.waiting = ["a", "b", "c", "d", "e", "f"].map((id) => stage(id));
    const d = await controller.tick();
    expect(d.desired).toBe(4);
    expect(d.maxWorkers).toBe(4);
    expect(d.reasons.some((r) => /capped at maxWorkers 4/.test(r))).toBe(true);
    expect(scaler.calls).toEqual([4]);
  });

  it("waits the batch delay for batch stages, and reports stages no worker could hold without scaling for them", async () => {
    const { controller, scaler, state, advance } = setup({ elasticity: { batchScaleUpDelaySeconds: 10 } });
    state.waiting = [stage("batchy", { priority: "batch" }), stage("huge", { vramMiB: 80_000, tenant: "other" })];
    const first = await controller.tick();
    expect(first.desired).toBe(0);
    expect(first.breakdown.batchDeferred).toBe(1);
    expect(first.unplaceable).toEqual([{ runId: "run-huge", stageId: "huge", tenant: "other", reason: "needs 80000 MiB per GPU; a GPU of this pool has 23552 MiB" }]);
    // Reasons never name a stage (the API shows them to every tenant).
    expect(first.reasons.join("\n")).not.toMatch(/huge|batchy/);
    advance(11);
    expect((await controller.tick()).desired).toBe(1);
    expect(scaler.calls).toEqual([1]);
  });

  it("keeps the scaler's failure (logged once per message) and tries again next time", async () => {
    const scaler = new FakeScaler(0);
    scaler.fail = "403: a Role is missing";
    const { controller, state } = setup({ scaler });
    state.waiting = [stage("a")];
    expect(await controller.tick()).toMatchObject({ desired: 1, scalerError: "403: a Role is missing" });
    scaler.fail = null;
    expect(await controller.tick()).toMatchObject({ desired: 1, scalerError: null });
    expect(scaler.calls).toEqual([1]);
  });

  it("asks nothing of the scaler once stopped (a deposed leader's computation in flight)", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const scaler = new FakeScaler(0);
    scaler.current = async () => {
      await gate;
      return 0;
    };
    const { controller, state } = setup({ scaler });
    state.waiting = [stage("a")];
    const inFlight = controller.tick();
    const stopped = controller.stop();
    release();
    await stopped;
    expect((await inFlight).desired).toBe(1);
    expect(scaler.calls).toEqual([]);
  });

  it("reads a worker's shape from the pool: its node's devices, less the headroom", () => {
    expect(poolShape(pool(2, 4, 81_920), 1024)).toEqual({ gpusPerWorker: 4, vramMiBPerGpu: 80_896 });
  });
});

describe("controlPlaneSources", () => {
  it("counts ready stages the scheduler cannot place (no-fit, gang), not quota or running ones, and busy GPUs by node", () => {
    const reasons: Record<string, { code: string } | null> = { a: { code: "no-fit" }, b: { code: "gang" }, c: { code: "quota" }, d: null, e: { code: "dependencies" } };
    const stages = new Map(
      Object.keys(reasons).map((id) => [id, { id, resources: { gpus: id === "b" ? 2 : 1, vramMiB: 4000 }, ...(id === "a" && { priority: "batch" as const }) }])
    );
    stages.set("cpu", { id: "cpu", resources: { gpus: 0, vramMiB: 0 } });
    const sources = controlPlaneSources({
      registry: {
        workers: () => [
          { workerId: "w0", node: "n0", gpus: 2, draining: true } as { workerId: string; node: string; gpus: number },
          { workerId: "w1", node: "n1", gpus: 2 },
        ],
        nodeOf: (id) => id.split("-")[0],
      },
      loop: {
        activeRunsOf: (tenant) => (tenant === "studio" ? [{ id: "r1", tenant, priority: "interactive", stages }] : []),
        runningStages: () => [{ gpus: ["n1-g0"] }, { gpus: ["n1-g1"] }],
      },
      scheduler: { explain: (_run, id) => reasons[id] ?? null },
      tenants: ["studio", "other"],
    });
    expect(sources.waiting()).toEqual([
      { runId: "r1", stageId: "a", tenant: "studio", gpus: 1, vramMiB: 4000, priority: "interactive" },
      { runId: "r1", stageId: "b", tenant: "studio", gpus: 2, vramMiB: 4000, priority: "interactive" },
    ]);
    expect(sources.workers()).toEqual([
      { workerId: "w0", gpus: 2, gpusBusy: 0, draining: true },
      { workerId: "w1", gpus: 2, gpusBusy: 2, draining: false },
    ]);
  });
});

describe("cluster.elasticity in the platform config", () => {
  it("defaults to off with min 0, no max (the pool's nodes), a 300 s cooldown and no provider", () => {
    expect(ElasticitySchema.parse({})).toEqual({ enabled: false, minWorkers: 0, maxWorkers: null, scaleDownCooldownSeconds: 300, batchScaleUpDelaySeconds: 30, intervalSeconds: 5, provider: { type: "none" } });
    expect(ElasticitySchema.parse({ provider: { type: "kubernetes", namespace: "gf", name: "batch-worker" } }).provider).toEqual({
      type: "kubernetes",
      namespace: "gf",
      kind: "StatefulSet",
      name: "batch-worker",
      serviceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
    });
  });

  it("refuses, naming the field and the fix", () => {
    const issues = (value: unknown) => {
      const r = ElasticitySchema.safeParse(value);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(issues({ minWorkers: 3, maxWorkers: 2 })).toEqual(["minWorkers: minWorkers must not be above maxWorkers: lower minWorkers or raise maxWorkers"]);
    expect(issues({ minWorkers: -1 })).toEqual(["minWorkers: must be 0 or more (0: the pool may scale to zero)"]);
    expect(issues({ maxWorkers: 0 })[0]).toMatch(/^maxWorkers: must be 1 or more/);
    expect(issues({ provider: { type: "kubernetes", namespace: "gf", kind: "DaemonSet", name: "w" } })[0]).toMatch(/^provider\.kind: must be 'StatefulSet' \(what the constructs synthesize for workers\) or 'Deployment'/);
  });

  it("refuses a max above the deployment pool's nodes (each worker serves one)", () => {
    const config = PlatformConfigSchema.safeParse({
      version: 1,
      platform: { name: "x", region: null, zones: [] },
      deployment: { name: "a", namespace: "gf", pool: "p", tier: "t", segment: "s", listen: { host: "0.0.0.0", port: 8443 }, dataDir: "/data", image: "i" },
      pools: [pool(2)],
      tiers: [{ name: "t", class: "hot", storageClassName: "sc", mountPath: "/t", retentionDays: null, encrypted: true, encryptionRequired: true, dataClassification: "internal" }],
      segments: [{ name: "s", namespace: "gf", defaultDenyIngress: true, defaultDenyEgress: true, allowedFrom: [], egressCidrs: [] }],
      tenants: [{ name: "studio", weight: 1, gpuQuota: null, vramQuotaMiB: null, roles: [], dataClassification: "internal", isolation: "shared" }],
      workflows: [],
      scheduler: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 300 },
      security: {
        auth: { required: true, tokens: { secretName: "tok", mountPath: "/tok" } },
        encryption: { atRest: true, algorithm: "AES-256-GCM", keyring: { secretName: "kr", mountPath: "/kr" } },
        audit: { signingKey: { secretName: "sk", mountPath: "/sk" }, sink: { type: "volume", claimName: "c", mountPath: "/a" }, checkpointEvery: 100, checkpointIntervalSeconds: 60 },
        tls: { enabled: false },
      },
      cluster: { elasticity: { enabled: true, maxWorkers: 3 } },
      runtimeRules: [],
    });
    expect(config.success).toBe(false);
    expect(config.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      "cluster.elasticity.maxWorkers: 3 workers for the 2 node(s) of pool 'p': each worker serves a node of the pool; use at most 2, or declare more nodes",
    ]);
  });
});
