import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { MIB_PER_GIB } from "../../runtime/scheduler/inventory.ts";
import type { RunSpec } from "../../runtime/scheduler/types.ts";
import { fixedPool, simulateElastic, type ElasticPoolSpec, type ElasticWorkload } from "../../runtime/sim/elastic.ts";
import { BURSTY_POOL, BURSTY_WINDOWS, studioBurstyWorkload } from "../../runtime/sim/workloads/studio-bursty.ts";

const POOL: ElasticPoolSpec = { model: "L4", memoryGiB: 24, gpusPerWorker: 1, minWorkers: 0, maxWorkers: 2, provisionDelayS: 60, cooldownS: 100, pricePerGpuHour: 3.6, evaluateEveryS: 10 };

function oneStageRun(id: string, priority: RunSpec["priority"], durationS: number, vramGiB = 10): RunSpec {
  return { id, tenant: "t", priority, stages: [{ id: "s", needs: [], gpus: 1, vramMiB: vramGiB * MIB_PER_GIB, durationS, modelLoadS: 0 }] };
}

function workload(arrivals: { at: number; run: RunSpec }[], horizonS: number): ElasticWorkload {
  return { name: "hand", tenants: [{ name: "t", weight: 1 }], arrivals, noise: 0, horizonS, settings: { headroomMiB: 0 } };
}

describe("elastic pools in the simulator", () => {
  it("scales from zero after the provisioning delay and back to zero after the cooldown, paying while the node is up", () => {
    const r = simulateElastic(workload([{ at: 0, run: oneStageRun("r", "interactive", 10) }], 100), POOL, { seed: 1 });
    // Asked for at 0, up at 60, the stage runs 60-70; idle from 70, surplus from the evaluation at 70, drained at 170.
    expect(r.row.interactive_p99_s).toBe(70);
    expect(r.row.interactive_queue_p99_s).toBe(60);
    expect(r.row.scale_ups).toBe(1);
    expect(r.row.drains).toBe(1);
    expect(r.row.billed_s).toBe(170);
    expect(r.row.gpu_hours).toBeCloseTo(170 / 3600, 2);
    expect(r.row.cost).toBeCloseTo((170 / 3600) * 3.6, 2);
    expect(r.timeline.map((p) => [p.at, p.desired, p.up, p.starting])).toEqual([
      [0, 1, 0, 1],
      [60, 1, 1, 0],
      [170, 0, 0, 0],
    ]);
  });

  it("a fixed pool is up from the start and paid for over the whole horizon", () => {
    const r = simulateElastic(workload([{ at: 5, run: oneStageRun("r", "interactive", 10) }], 3600), fixedPool(POOL, 2), { seed: 1 });
    expect(r.row.interactive_p99_s).toBe(10);
    expect(r.row.gpu_hours).toBe(2);
    expect(r.row.cost).toBe(7.2);
    expect(r.row.scale_ups).toBe(0);
  });

  it("lets young batch work wait for the running node instead of buying one, then scales for it", () => {
    // One node kept warm; a 20 s batch stage waits behind a 25 s one: it never asks for a second node.
    const short = simulateElastic(workload([{ at: 0, run: oneStageRun("a", "batch", 25) }, { at: 1, run: oneStageRun("b", "batch", 20) }], 100), { ...POOL, minWorkers: 1, batchScaleUpDelayS: 30 }, { seed: 1 });
    expect(short.row.scale_ups).toBe(0);
    // A 100 s stage ahead: ripe at 31 (ready at 1, 30 s delay), asked for at the controller's next look (every 10 s from 0).
    const long = simulateElastic(workload([{ at: 0, run: oneStageRun("a", "batch", 100) }, { at: 1, run: oneStageRun("b", "batch", 20) }], 100), { ...POOL, minWorkers: 1, batchScaleUpDelayS: 30 }, { seed: 1 });
    expect(long.row.scale_ups).toBe(1);
    expect(long.timeline.find((p) => p.starting > 0)!.at).toBe(40);
  });

  it("fails clearly for a stage no worker can hold instead of scaling for it", () => {
    expect(() => simulateElastic(workload([{ at: 0, run: oneStageRun("r", "interactive", 10, 40) }], 100), POOL, { seed: 1 })).toThrow(/run r rejected/);
  });

  it("names the field of an invalid pool", () => {
    expect(() => simulateElastic(workload([], 10), { ...POOL, minWorkers: 3 }, { seed: 1 })).toThrow(/maxWorkers must be a whole number ≥ 1 and ≥ minWorkers/);
  });

  it("on the bursty studio day: every run completes, never above max, fewer GPU-hours than the fixed peak pool, deterministic", () => {
    const w = studioBurstyWorkload(3);
    const a = simulateElastic(w, BURSTY_POOL, { seed: 3 });
    expect(a.row.runs_completed).toBe(a.row.runs_submitted);
    expect(a.row.stages_interrupted).toBe(0);
    for (const p of a.timeline) {
      expect(p.up + p.starting).toBeLessThanOrEqual(BURSTY_POOL.maxWorkers);
      expect(p.up + p.starting).toBeGreaterThanOrEqual(BURSTY_POOL.minWorkers);
      expect(p.desired).toBeLessThanOrEqual(BURSTY_POOL.maxWorkers);
    }
    expect(a.row.peak_workers).toBe(BURSTY_POOL.maxWorkers);
    // Back to the warm floor during lunch.
    const lunch = a.timeline.filter((p) => p.at > BURSTY_WINDOWS[0]![1] + BURSTY_POOL.cooldownS + 60 && p.at < BURSTY_WINDOWS[1]![0]);
    for (const p of lunch) expect(p.up + p.starting).toBe(BURSTY_POOL.minWorkers);
    const peak = simulateElastic(w, fixedPool(BURSTY_POOL, BURSTY_POOL.maxWorkers), { seed: 3 });
    expect(a.row.gpu_hours!).toBeLessThan(0.6 * peak.row.gpu_hours!);
    expect(simulateElastic(studioBurstyWorkload(3), BURSTY_POOL, { seed: 3 }).row).toEqual(a.row);
  });

  it("the bursty workload: sessions of interactive variations, batch sprints, nothing over lunch, same for a seed", () => {
    const w = studioBurstyWorkload(1);
    expect(studioBurstyWorkload(1)).toEqual(w);
    expect(studioBurstyWorkload(2).arrivals).not.toEqual(w.arrivals);
    const [, lunchEnd] = [BURSTY_WINDOWS[0]![1], BURSTY_WINDOWS[1]![0]];
    expect(w.arrivals.filter((a) => a.at >= BURSTY_WINDOWS[0]![1] && a.at < lunchEnd)).toEqual([]);
    const batchTimes = new Set(w.arrivals.filter((a) => a.run.priority === "batch").map((a) => a.at));
    expect(batchTimes.size).toBe(3);
    expect(w.arrivals.filter((a) => a.run.priority === "interactive").length).toBeGreaterThan(300);
  });
});

describe("gpufabric simulate --elastic", () => {
  const bin = new URL("../../bin/gpufabric.mjs", import.meta.url).pathname;
  const cli = (...args: string[]) => spawnSync(process.execPath, [bin, "simulate", ...args], { encoding: "utf8" });

  it("reports GPU-hours, cost, interactive p99 and queue time for the elastic pool and both fixed pools", () => {
    const r = cli("--workload", "studio-bursty", "--elastic", "--seed", "2", "--json");
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { results: Record<string, unknown>[] };
    expect(out.results.map((x) => x.pool)).toEqual(["elastic", "fixed-peak", "fixed-average"]);
    for (const row of out.results) for (const f of ["gpu_hours", "cost", "interactive_p99_s", "interactive_queue_p99_s", "batch_queue_mean_s"]) expect(row[f]).not.toBeNull();
    const [elastic, peak] = out.results as { gpu_hours: number; cost: number }[];
    expect(elastic!.gpu_hours).toBeLessThan(peak!.gpu_hours);
    expect(elastic!.cost).toBeCloseTo(elastic!.gpu_hours * 1.8, 1);
    const text = cli("--workload", "studio-bursty", "--elastic", "--seed", "2", "--workers", "1-4", "--price", "2");
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/elastic\s+1-4 workers\s+[\d.]+ GPU-hours, cost [\d.]+; interactive p50 [\d.]+ s, p99 [\d.]+ s; interactive queue p99/);
    expect(text.stdout).toMatch(/fixed-peak\s+4 workers/);
  });

  it("exits 2 naming the flag for bad elastic flags", () => {
    const workers = cli("--workload", "studio-bursty", "--elastic", "--workers", "3-1");
    expect(workers.status).toBe(2);
    expect(workers.stderr).toContain("--workers must be MIN-MAX");
    const shape = cli("--workload", "studio-bursty", "--elastic", "--worker-shape", "L40S");
    expect(shape.status).toBe(2);
    expect(shape.stderr).toContain("--worker-shape must be GPUSxMODEL-GiB");
    const pool = cli("--workload", "studio-bursty", "--elastic", "--pool", "8xH100-80");
    expect(pool.status).toBe(2);
    expect(pool.stderr).toContain("drop --pool");
  });
});

describe("bench:scheduler's elastic section", () => {
  it("meets its targets on studio-bursty (seeds 1-5): ≥ 40% fewer GPU-hours than fixed-for-peak, p99 within 1.5× of it, far below fixed-for-average", async () => {
    const { runElasticComparison } = await import("../../bench/scheduler-elastic.ts");
    const c = runElasticComparison({ seed: 1 });
    expect(c.rows.map((r) => r.pool)).toEqual(["elastic", "fixed-peak", "fixed-average"]);
    for (const t of c.targets) expect(t.met, `${t.target}: ${t.detail}`).toBe(true);
  });
});
