import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  computeDemand,
  type DemandPool,
  type DemandWorker,
  type PendingStage,
} from "../../runtime/scheduler/demand.ts";

const POOL: DemandPool = { gpusPerWorker: 8, vramMiBPerGpu: 81920, minWorkers: 0, maxWorkers: 10, scaleDownCooldownS: 300, batchScaleUpDelayS: 30 };

function worker(id: string, busy: number, extra: Partial<DemandWorker> = {}): DemandWorker {
  return { id, gpusBusy: busy, gpusFree: 8 - busy, draining: false, starting: false, idleSinceS: busy > 0 ? null : 0, ...extra };
}

function stage(id: string, gpus: number, priority: "interactive" | "batch" = "interactive", extra: Partial<PendingStage> = {}): PendingStage {
  return { id, gpus, vramMiB: 20000, priority, readySinceS: 0, ...extra };
}

describe("computeDemand", () => {
  it("scales from zero at once for interactive work, packing stages by GPUs", () => {
    const r = computeDemand({ pool: POOL, workers: [], pending: [stage("a", 4), stage("b", 4), stage("c", 2)], nowS: 0 });
    expect(r.desired).toBe(2);
    expect(r.breakdown.interactiveWorkers).toBe(2);
    expect(r.drain).toEqual([]);
  });

  it("packs onto free GPUs of running and starting workers before asking for new ones", () => {
    const workers = [worker("w1", 6), worker("w2", 0, { starting: true, idleSinceS: null })];
    const r = computeDemand({ pool: POOL, workers, pending: [stage("a", 2), stage("b", 8)], nowS: 10 });
    expect(r.desired).toBe(2);
    expect(r.breakdown.interactiveWorkers).toBe(0);
  });

  it("reports a stage needing more VRAM per GPU or more GPUs than a worker has, and never scales for it", () => {
    const r = computeDemand({
      pool: POOL,
      workers: [],
      pending: [stage("big", 1, "interactive", { vramMiB: 100000 }), stage("wide", 16)],
      nowS: 0,
    });
    expect(r.desired).toBe(0);
    expect(r.unplaceable.map((u) => u.stageId).sort()).toEqual(["big", "wide"]);
    expect(r.unplaceable.find((u) => u.stageId === "big")!.reason).toContain("81920 MiB");
  });

  it("lets young batch demand wait for freed GPUs, then scales for it", () => {
    const pending = [stage("b1", 8, "batch", { readySinceS: 100 })];
    const young = computeDemand({ pool: POOL, workers: [worker("w1", 8)], pending, nowS: 110 });
    expect(young.desired).toBe(1);
    expect(young.breakdown.batchDeferred).toBe(1);
    const ripe = computeDemand({ pool: POOL, workers: [worker("w1", 8)], pending, nowS: 130 });
    expect(ripe.desired).toBe(2);
    expect(ripe.breakdown.batchWorkers).toBe(1);
  });

  it("serves interactive demand first when maxWorkers caps the pool", () => {
    const pool = { ...POOL, maxWorkers: 2 };
    const pending = [stage("b1", 8, "batch"), stage("b2", 8, "batch"), stage("i1", 8), stage("i2", 8)];
    const r = computeDemand({ pool, workers: [], pending, nowS: 100 });
    expect(r.desired).toBe(2);
    expect(r.breakdown.interactiveWorkers).toBe(2);
    expect(r.reasons.join("\n")).toContain("capped at maxWorkers 2");
  });

  it("drains idle workers only after the cooldown of continuous surplus, longest idle first, never below min", () => {
    const pool = { ...POOL, minWorkers: 1 };
    const workers = [worker("busy", 3), worker("old", 0, { idleSinceS: 10 }), worker("new", 0, { idleSinceS: 50 })];
    const first = computeDemand({ pool, workers, pending: [], nowS: 100 });
    expect(first.desired).toBe(3);
    expect(first.drain).toEqual([]);
    expect(first.state.surplusSinceS).toBe(100);
    const early = computeDemand({ pool, workers, pending: [], nowS: 399, state: first.state });
    expect(early.drain).toEqual([]);
    const due = computeDemand({ pool, workers, pending: [], nowS: 400, state: first.state });
    expect(due.drain).toEqual(["old", "new"]);
    expect(due.desired).toBe(1);
    const atMin = computeDemand({ pool: { ...pool, minWorkers: 2 }, workers, pending: [], nowS: 400, state: first.state });
    expect(atMin.drain).toEqual(["old"]);
    expect(atMin.desired).toBe(2);
  });

  it("restarts the cooldown when demand interrupts the surplus", () => {
    const workers = [worker("w1", 0, { idleSinceS: 0 })];
    const a = computeDemand({ pool: POOL, workers, pending: [], nowS: 0 });
    const b = computeDemand({ pool: POOL, workers, pending: [stage("x", 8), stage("y", 8)], nowS: 200, state: a.state });
    expect(b.state.surplusSinceS).toBeNull();
    const c = computeDemand({ pool: POOL, workers, pending: [], nowS: 310, state: b.state });
    expect(c.drain).toEqual([]);
    expect(c.state.surplusSinceS).toBe(310);
  });

  it("keeps an idle worker that waiting work was packed onto", () => {
    const workers = [worker("w1", 0, { idleSinceS: 0 })];
    const r = computeDemand({ pool: POOL, workers, pending: [stage("b", 4, "batch", { readySinceS: 999 })], nowS: 1000, state: { surplusSinceS: 0 } });
    expect(r.drain).toEqual([]);
    expect(r.desired).toBe(1);
  });

  it("names the field and the fix for an invalid pool", () => {
    expect(() => computeDemand({ pool: { ...POOL, maxWorkers: -1 }, workers: [], pending: [], nowS: 0 })).toThrow(/pool\.maxWorkers must be an integer ≥ minWorkers/);
  });
});

const arbWorker = (i: number): fc.Arbitrary<DemandWorker> =>
  fc.record({
    busy: fc.integer({ min: 0, max: 8 }),
    draining: fc.boolean(),
    starting: fc.boolean(),
    idleSince: fc.integer({ min: 0, max: 1000 }),
  }).map(({ busy, draining, starting, idleSince }) => ({
    id: `w${i}`,
    gpusBusy: starting ? 0 : busy,
    gpusFree: starting ? 8 : 8 - busy,
    draining,
    starting,
    idleSinceS: starting || busy > 0 ? null : idleSince,
  }));
const arbWorkers = fc.integer({ min: 0, max: 8 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbWorker(i))));
const arbStage = fc.record({
  id: fc.uuid(),
  gpus: fc.constantFrom(0, 1, 1, 2, 4, 8),
  vramMiB: fc.integer({ min: 1000, max: 90000 }),
  priority: fc.constantFrom("interactive" as const, "batch" as const),
  readySinceS: fc.integer({ min: 0, max: 1000 }),
});
const arbPool = fc.record({
  minWorkers: fc.integer({ min: 0, max: 3 }),
  extra: fc.integer({ min: 0, max: 8 }),
  cooldown: fc.integer({ min: 0, max: 600 }),
}).map(({ minWorkers, extra, cooldown }) => ({ ...POOL, minWorkers, maxWorkers: minWorkers + extra, scaleDownCooldownS: cooldown }));
const arbState = fc.option(fc.integer({ min: 0, max: 1000 }), { nil: null }).map((s) => ({ surplusSinceS: s }));

describe("computeDemand properties", () => {
  it("stays within [min, max] and never drains a busy, starting or draining worker", () => {
    fc.assert(
      fc.property(arbPool, arbWorkers, fc.array(arbStage, { maxLength: 20 }), arbState, fc.integer({ min: 1000, max: 3000 }), (pool, workers, pending, state, nowS) => {
        const r = computeDemand({ pool, workers, pending, nowS, state });
        expect(r.desired).toBeGreaterThanOrEqual(pool.minWorkers);
        expect(r.desired).toBeLessThanOrEqual(pool.maxWorkers);
        for (const id of r.drain) {
          const w = workers.find((x) => x.id === id)!;
          expect(w.gpusBusy).toBe(0);
          expect(w.starting).toBe(false);
          expect(w.draining).toBe(false);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("is monotone in demand: more waiting stages never lower desired nor drain more", () => {
    fc.assert(
      fc.property(arbPool, arbWorkers, fc.array(arbStage, { maxLength: 12 }), fc.array(arbStage, { minLength: 1, maxLength: 6 }), arbState, fc.integer({ min: 1000, max: 3000 }), (pool, workers, pending, more, state, nowS) => {
        const base = computeDemand({ pool, workers, pending, nowS, state });
        const bigger = computeDemand({ pool, workers, pending: [...pending, ...more], nowS, state });
        expect(bigger.desired).toBeGreaterThanOrEqual(base.desired);
        expect(bigger.drain.length).toBeLessThanOrEqual(base.drain.length);
      }),
      { numRuns: 400 },
    );
  });

  it("respects the cooldown: nothing under maxWorkers is drained before surplus has lasted the cooldown", () => {
    fc.assert(
      fc.property(arbPool, arbWorkers, fc.array(arbStage, { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 12 }), (pool, workers, pending, steps) => {
        // Replays calls over time with the carried state; a drain (below max) needs surplus since ≥ cooldown ago.
        let state = { surplusSinceS: null as number | null };
        let now = 1000;
        let surplusStart: number | null = null;
        for (const step of steps) {
          now += step;
          const r = computeDemand({ pool, workers, pending, nowS: now, state });
          if (r.breakdown.surplus > 0) surplusStart ??= now;
          else surplusStart = null;
          const live = workers.filter((w) => !w.draining).length;
          if (r.drain.length > Math.max(0, live - pool.maxWorkers)) {
            expect(surplusStart).not.toBeNull();
            expect(now - surplusStart!).toBeGreaterThanOrEqual(pool.scaleDownCooldownS);
            surplusStart = null;
          }
          state = r.state;
        }
      }),
      { numRuns: 300 },
    );
  });
});
