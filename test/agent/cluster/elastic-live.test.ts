/**
 * Elasticity live on one machine, as `gpufabric dev --workers auto` runs it: a real PostgreSQL, a control
 * plane whose demand controller publishes the pool's desired workers (cluster.elasticity, provider none),
 * and worker processes started and stopped by the local scaler following that number. From
 * zero workers a burst of runs brings workers up (as many as the demand, never above the max), every run
 * succeeds with one attempt per stage (no stage interrupted by a scale-down), the workers drain back to zero
 * after the cooldown, and a second, smaller burst brings up only what it needs. A busy worker sent SIGTERM
 * by a scale-down drains: its stage completes there and the worker exits 0; a second SIGTERM stops it at
 * once, its attempt ends interrupted (no failure counted) and the stage runs again on a worker the demand
 * brings up.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { loadPlatformConfig } from "../../../runtime/config/index.ts";
import { LocalCluster } from "../../../runtime/agent/cluster/local-cluster.ts";
import { startLocalPostgres } from "../../../runtime/agent/cluster/local-postgres.ts";
import { LocalScaler } from "../../../runtime/agent/cluster/elastic/local-scaler.ts";
import { LocalAutoscaler } from "../../../runtime/agent/cluster/elastic/local-autoscaler.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, waitFor, type TestPlatform } from "../service/harness.ts";

const TIMEOUT = 120_000;
const MAX = 3;
const COOLDOWN_S = 2;
const probe = await startLocalPostgres();
const unavailable = "unavailable" in probe ? probe.unavailable : undefined;
if (!("unavailable" in probe)) await probe.stop();
if (unavailable) console.warn(`note: elastic live test skipped: ${unavailable}`);

describe.runIf(unavailable === undefined)("elastic workers on one machine", () => {
  let platform: TestPlatform;
  let cluster: LocalCluster;
  let scaler: LocalScaler;
  let autoscaler: LocalAutoscaler;
  /** The most workers up or starting at once, sampled every 100 ms. */
  let peak = 0;
  let sampler: NodeJS.Timeout;
  const api = () => client(cluster.url, platform.tokens.studio!);

  beforeAll(async () => {
    platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }] });
    cluster = await LocalCluster.start({
      config: loadPlatformConfig(platform.configFile),
      dataDir: platform.dataDir,
      workers: 0,
      maxWorkers: MAX,
      scaleDownCooldownS: COOLDOWN_S,
      controlPlanes: 1,
      gpusPerWorker: 1,
      workerLeaseMs: 3000,
      leaderLeaseMs: 3000,
    });
    const pool = cluster.config.pools.find((p) => p.name === cluster.config.deployment.pool)!;
    const nodeOf = (slot: number) => `${pool.name}-n${slot}`;
    const logger = pino({ level: "silent" });
    autoscaler = new LocalAutoscaler({
      scaler: (scaler = new LocalScaler({ launcher: cluster, pool: pool.name, nodeOf, busy: (node) => autoscaler.busy(node), logger })),
      pool: pool.name,
      intervalMs: 300,
      leaderUrl: async () => (await cluster.leader())?.url,
      token: platform.tokens.studio!,
      logger,
    });
    autoscaler.start();
    sampler = setInterval(() => void scaler.current(pool.name).then((n) => (peak = Math.max(peak, n))), 100);
  }, TIMEOUT);
  afterAll(async () => {
    clearInterval(sampler);
    await autoscaler?.stop();
    await scaler?.close();
    await cluster?.stop();
    if (platform) removePlatform(platform);
  });

  /** Submits `n` one-stage runs and waits for all; every stage ran once and completed. */
  async function burst(n: number, ms: number): Promise<void> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await api().post("/v1/runs", { workflow: sleepyWorkflow(`burst-${Date.now()}-${i}`, [{ id: "render", ms }]) });
      expect(res.status).toBe(202);
      ids.push(res.body.id as string);
    }
    for (const id of ids) {
      const run = await api().waitForRun(id, undefined, 90_000);
      expect(run.status).toBe("succeeded");
      const attempts = run.attempts as Array<{ stageId: string; number: number; status: string }>;
      expect(attempts.map((a) => [a.stageId, a.number, a.status])).toEqual([["render", 1, "succeeded"]]);
    }
  }

  const allFree = () => scaler.states().every((s) => s === "free");

  it(
    "scales from zero with a burst, never above the max, loses no run, drains back to zero, and scales up again",
    async () => {
      // Nothing waits: nothing starts.
      await new Promise((r) => setTimeout(r, 1000));
      expect(scaler.states()).toEqual(["free", "free", "free"]);
      expect(scaler.history).toEqual([]);

      // Six one-GPU stages on one-GPU workers: the demand is 6, the max 3.
      await burst(6, 2500);
      expect(peak).toBe(MAX);
      expect(scaler.history.filter((h) => h.what === "start")).toHaveLength(MAX);

      // The cooldown passes; every worker drains, leaves the leader and exits 0.
      await waitFor("the workers to drain back to zero", allFree, 30_000);
      const exits = scaler.history.filter((h) => h.what === "exit");
      expect(exits).toHaveLength(MAX);
      expect(exits.every((h) => h.code === 0)).toBe(true);
      const firstStop = scaler.history.find((h) => h.what === "stop")!;
      const lastUp = scaler.history.filter((h) => h.what === "up").at(-1)!;
      expect(firstStop.atMs - lastUp.atMs).toBeGreaterThanOrEqual(COOLDOWN_S * 1000);

      // A smaller burst: one stage asks for one worker only.
      peak = 0;
      const before = scaler.history.length;
      await burst(1, 1500);
      expect(peak).toBe(1);
      expect(scaler.history.slice(before).filter((h) => h.what === "start")).toHaveLength(1);
      await waitFor("the worker to drain back to zero", allFree, 30_000);
    },
    TIMEOUT
  );

  it(
    "drains a busy worker sent SIGTERM by a scale-down: its stage completes there, the worker exits 0",
    async () => {
      const res = await api().post("/v1/runs", { workflow: sleepyWorkflow(`drain-${Date.now()}`, [{ id: "render", ms: 3000 }]) });
      const id = res.body.id as string;
      const running = await waitFor("the stage to run", async () => {
        const r = (await api().get(`/v1/runs/${id}`)).body;
        return r.stages?.[0]?.status === "running" ? r : undefined;
      });
      const node = running.stages[0].node as string;
      const slot = Number(/-n(\d+)$/.exec(node)![1]);
      const before = scaler.history.length;
      // A scale-down that finds only a busy worker (the leader itself never asks for one): the scaler
      // sends it SIGTERM, and it drains.
      await scaler.scaleTo(cluster.config.deployment.pool, 0);
      expect(scaler.history.slice(before).find((h) => h.what === "stop")?.slot).toBe(slot);
      const run = await api().waitForRun(id, undefined, 60_000);
      expect(run.status).toBe("succeeded");
      expect(run.stages[0].node).toBe(node);
      expect((run.attempts as Array<{ number: number; status: string }>).map((a) => [a.number, a.status]), JSON.stringify(run.attempts)).toEqual([[1, "succeeded"]]);
      const exit = await waitFor("the drained worker to exit", () => scaler.history.slice(before).find((h) => h.what === "exit" && h.slot === slot));
      expect(exit.code).toBe(0);
    },
    TIMEOUT
  );

  it(
    "stops a draining worker at once on a second SIGTERM: its stage runs again on a worker the demand brings up",
    async () => {
      const res = await api().post("/v1/runs", { workflow: sleepyWorkflow(`twice-${Date.now()}`, [{ id: "render", ms: 4000 }]) });
      const id = res.body.id as string;
      const running = await waitFor("the stage to run", async () => {
        const r = (await api().get(`/v1/runs/${id}`)).body;
        return r.stages?.[0]?.status === "running" ? r : undefined;
      });
      const slot = Number(/-n(\d+)$/.exec(running.stages[0].node as string)![1]);
      await scaler.scaleTo(cluster.config.deployment.pool, 0);
      await new Promise((r) => setTimeout(r, 300));
      cluster.signal(`worker-${slot}`, "SIGTERM");
      const run = await api().waitForRun(id, undefined, 60_000);
      expect(run.status).toBe("succeeded");
      const attempts = run.attempts as Array<{ number: number; status: string }>;
      expect(attempts.map((a) => a.number)).toEqual([1, 2]);
      // Interrupted, as after a lost node: not a failure, rerun at once.
      expect(attempts[0]!.status).toBe("interrupted");
      expect(attempts[1]!.status).toBe("succeeded");
    },
    TIMEOUT
  );
});
