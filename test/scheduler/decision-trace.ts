/**
 * A seeded driver that puts the scheduler through every path it has (gangs, CPU stages, kills,
 * quotas, aging, failed attempts, cancels, rejections, planned and large runs, explain) and folds
 * everything it says into one SHA-256 digest. Two builds that make the same decisions give the same
 * digest, so a speed-up or a refactoring can prove it changed no decision.
 */
import { createHash } from "node:crypto";
import type { SchedulerSettings } from "../../runtime/config/schema.ts";
import { parsePoolSpec } from "../../runtime/scheduler/inventory.ts";
import { deriveSeed, seededRandom, type Random } from "../../runtime/scheduler/prng.ts";
import { Scheduler, type TenantShare } from "../../runtime/scheduler/scheduler.ts";
import type { RunSpec, StageSpec } from "../../runtime/scheduler/types.ts";

export interface TraceScenario {
  readonly name: string;
  readonly pool: string;
  readonly tenants?: readonly TenantShare[];
  readonly settings: Partial<SchedulerSettings>;
  readonly runs: number;
  readonly seed: number;
  /** Chance that an attempt fails, and that a run is cancelled when one of its stages ends. */
  readonly failRate: number;
  readonly cancelRate: number;
}

export interface TraceResult {
  readonly digest: string;
  readonly decisions: number;
  readonly placements: number;
  readonly kills: number;
  readonly rejected: number;
  readonly succeeded: number;
  readonly failed: number;
}

const MODELS = ["sdxl", "flux", "llama-8b", "whisper", "sam"];
const GiB = 1024;

function randomRun(random: Random, n: number, tenants: readonly string[]): RunSpec {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  // Mostly small runs (the scratch-buffer DAG path), some over 16 stages (indexed by id).
  const size = random() < 0.08 ? 17 + Math.floor(random() * 8) : 1 + Math.floor(random() * 6);
  const stages: StageSpec[] = [];
  for (let i = 0; i < size; i++) {
    const needs: string[] = [];
    for (let p = 0; p < i; p++) if (random() < 0.3) needs.push(`s${p}`);
    const kind = random();
    const gpus = kind < 0.1 ? 0 : kind < 0.2 ? 2 + Math.floor(random() * 3) : 1;
    const model = random() < 0.75 ? pick(MODELS) : undefined;
    const vramMiB = gpus === 0 ? 0 : Math.round((4 + random() * 60) * GiB);
    stages.push({
      id: `s${i}`,
      needs,
      gpus,
      vramMiB,
      ...(model !== undefined && gpus > 0 ? { model, modelMiB: Math.round(vramMiB * 0.7) } : {}),
      durationS: Math.round(5 + random() * 120),
      modelLoadS: model !== undefined && gpus > 0 ? Math.round(random() * 30) : 0,
    });
  }
  // A few stages no GPU could hold, and a few tenants nobody declared, to pin the rejections.
  if (random() < 0.03) stages[0] = { ...stages[0]!, gpus: 1, vramMiB: 500 * GiB };
  const tenant = random() < 0.02 ? "stranger" : pick(tenants);
  return { id: `r${n}`, tenant, priority: random() < 0.3 ? "interactive" : "batch", stages, ...(random() < 0.1 ? { planAhead: true } : {}) };
}

interface Running {
  readonly runId: string;
  readonly stageId: string;
  readonly end: number;
  live: boolean;
}

/** Runs a scenario to the end and returns the digest of everything the scheduler said. */
export function traceScenario(sc: TraceScenario): TraceResult {
  const random = seededRandom(deriveSeed(sc.seed, `trace:${sc.name}`));
  const scheduler = new Scheduler({ gpus: parsePoolSpec(sc.pool), ...(sc.tenants ? { tenants: sc.tenants } : {}), settings: sc.settings, plan: { seed: sc.seed, budget: 20 } });
  const tenantNames = (sc.tenants ?? [{ name: "a" }, { name: "b" }]).map((t) => t.name);
  const hash = createHash("sha256");
  const out = (tag: string, value: unknown) => hash.update(`${tag} ${JSON.stringify(value)}\n`);
  const arrivals: { at: number; run: RunSpec }[] = [];
  let t = 0;
  for (let i = 0; i < sc.runs; i++) {
    t += Math.round(random() * 40 * 1000) / 1000;
    arrivals.push({ at: t, run: randomRun(random, i, tenantNames) });
  }
  const running = new Map<string, Running>();
  const key = (runId: string, stageId: string) => `${runId}/${stageId}`;
  const result = { decisions: 0, placements: 0, kills: 0, rejected: 0, succeeded: 0, failed: 0 };
  const waitingSeen: { runId: string; stageId: string }[] = [];
  let next = 0;
  let now = 0;
  for (let guard = 0; guard < 1_000_000; guard++) {
    // The next event: an arrival, the end of a running stage, or a tick every 30 s for aging.
    let soonest = next < arrivals.length ? arrivals[next]!.at : Infinity;
    for (const r of running.values()) if (r.live && r.end < soonest) soonest = r.end;
    if (soonest === Infinity) {
      if (waitingSeen.length === 0) break;
      soonest = now + 30;
    }
    now = Math.min(soonest, now + 30);
    while (next < arrivals.length && arrivals[next]!.at <= now) {
      const res = scheduler.submit(arrivals[next]!.run, now);
      out("submit", [now, arrivals[next]!.run.id, res]);
      if (!res.accepted) result.rejected++;
      next++;
    }
    const ended = [...running.values()].filter((r) => r.live && r.end <= now).sort((x, y) => x.end - y.end || (key(x.runId, x.stageId) < key(y.runId, y.stageId) ? -1 : 1));
    for (const r of ended) {
      running.delete(key(r.runId, r.stageId));
      const state = scheduler.finished(r.runId, r.stageId, now, random() < sc.failRate ? "failed" : "succeeded");
      out("finished", [now, r.runId, r.stageId, state]);
      if (state === "succeeded") result.succeeded++;
      if (state === "failed") result.failed++;
      if (state === "running" && random() < sc.cancelRate) out("cancel", [now, r.runId, scheduler.cancel(r.runId)]);
    }
    const decisions = scheduler.schedule(now);
    result.decisions += decisions.length;
    out("schedule", [now, decisions]);
    waitingSeen.length = 0;
    for (const d of decisions) {
      if (d.kind === "placed") {
        result.placements++;
        const end = now + arrivalStage(arrivals, d.runId, d.stageId).durationS + d.reason.modelLoadS;
        running.set(key(d.runId, d.stageId), { runId: d.runId, stageId: d.stageId, end, live: true });
      } else if (d.kind === "killed") {
        result.kills++;
        running.get(key(d.runId, d.stageId))!.live = false;
        running.delete(key(d.runId, d.stageId));
      } else waitingSeen.push({ runId: d.runId, stageId: d.stageId });
    }
    // Ask why for a few of the stages left waiting, as the agent's API does.
    for (let i = 0; i < waitingSeen.length && i < 3; i++) out("explain", [waitingSeen[i], scheduler.explain(waitingSeen[i]!.runId, waitingSeen[i]!.stageId)]);
  }
  out("end", [now, scheduler.placements, scheduler.tenantUsage(), Array.from({ length: scheduler.gpuCount }, (_, g) => [scheduler.gpuId(g), scheduler.residentModels(g)])]);
  return { digest: hash.digest("hex"), ...result };
}

const specsById = new WeakMap<readonly { at: number; run: RunSpec }[], Map<string, StageSpec>>();

function arrivalStage(arrivals: readonly { at: number; run: RunSpec }[], runId: string, stageId: string): StageSpec {
  let map = specsById.get(arrivals);
  if (map === undefined) {
    map = new Map();
    for (const a of arrivals) for (const s of a.run.stages) map.set(`${a.run.id}/${s.id}`, s);
    specsById.set(arrivals, map);
  }
  return map.get(`${runId}/${stageId}`)!;
}

/** The scenarios pinned by the golden digests: each policy of preemption, quotas, multi-node gangs, small nodes. */
export const TRACE_SCENARIOS: readonly TraceScenario[] = [
  {
    name: "kill-quotas",
    pool: "2x4xH100-80,4xL40S-48,6xA10G-24",
    tenants: [
      { name: "a", weight: 2 },
      { name: "b", weight: 1, gpuQuota: 5 },
      { name: "c", weight: 1, vramQuotaMiB: 160 * GiB },
    ],
    settings: { headroomMiB: 1024, preemption: "kill", agingSeconds: 120 },
    runs: 400,
    seed: 7,
    failRate: 0.05,
    cancelRate: 0.03,
  },
  {
    name: "stage-boundary-open-tenants",
    pool: "3x8xH100-80,8xA10G-24",
    settings: { headroomMiB: 2048, preemption: "stage-boundary", agingSeconds: 90 },
    runs: 400,
    seed: 11,
    failRate: 0.04,
    cancelRate: 0.02,
  },
  {
    name: "never-small-nodes",
    pool: "2x4xA100-80,4xL4-24",
    tenants: [
      { name: "a", weight: 1 },
      { name: "b", weight: 3 },
    ],
    settings: { headroomMiB: 0, preemption: "never", agingSeconds: 60 },
    runs: 250,
    seed: 3,
    failRate: 0.06,
    cancelRate: 0.04,
  },
];
