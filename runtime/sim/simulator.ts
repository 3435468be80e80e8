/**
 * Discrete-event simulator: runs a workload through a policy (gpufabric's scheduler or a baseline)
 * and measures it. Deterministic for a seed: actual durations are drawn per stage at arrival from a
 * seeded generator, so every policy sees the same work. The simulator keeps its own ground truth
 * of GPU memory and resident models: a policy that overcommits VRAM gets OOM failures, and a model
 * not resident on a GPU costs its load time.
 */
import { criticalPath } from "../scheduler/dag.ts";
import { deriveSeed, seededRandom } from "../scheduler/prng.ts";
import type { StageSpec } from "../scheduler/types.ts";
import { jainIndex, percentile, round } from "./metrics.ts";
import type { SimPolicy } from "./policy.ts";
import { ARRIVAL, eventQueue, FINISH, trackRun, type RunTrack, type SimEvent } from "./run-track.ts";
import type { Workload } from "./workload.ts";

/** Seconds until an out-of-memory failure is noticed and the attempt ends. */
export const OOM_DETECT_S = 2;

export interface ResultRow {
  readonly workload: string;
  readonly policy: string;
  readonly makespan_s: number | null;
  readonly lower_bound_s: number | null;
  readonly best_known_s: number | null;
  readonly interactive_p50_s: number | null;
  readonly interactive_p99_s: number | null;
  readonly batch_makespan_s: number | null;
  readonly oom_events: number;
  readonly model_loads: number;
  readonly gpu_busy_pct: number | null;
  readonly jain_fairness: number | null;
  /** Placements per second of wall time spent inside the policy; null when not timed. */
  readonly decisions_per_s: number | null;
}

export interface SimDetails {
  readonly runsSubmitted: number;
  readonly runsCompleted: number;
  readonly runsRejected: number;
  readonly runsFailed: number;
  readonly rejections: readonly { readonly runId: string; readonly field: string; readonly message: string }[];
  readonly kills: number;
  readonly decisions: number;
  /** GPU-seconds per tenant while every tenant had work waiting. */
  readonly saturatedGpuSeconds: Readonly<Record<string, number>>;
  readonly saturatedSeconds: number;
}

export interface SimOptions {
  readonly seed: number;
  /** Wall-clock reader (milliseconds) for decisions_per_s; absent keeps the result fully deterministic. */
  readonly stopwatch?: () => number;
  readonly onProgress?: (doneRuns: number, totalRuns: number) => void;
}

export interface SimResult {
  readonly row: ResultRow;
  readonly details: SimDetails;
}

interface Attempt {
  readonly run: RunTrack;
  readonly index: number;
  readonly gpus: readonly number[];
  readonly ok: boolean;
  readonly end: number;
  cancelled: boolean;
}

interface SimModel {
  readonly mib: number;
  lastUse: number;
  inUse: number;
}

interface SimGpu {
  readonly capacityMiB: number;
  runningMiB: number;
  idleMiB: number;
  readonly resident: Map<string, SimModel>;
  busy: number;
}

export function simulate(workload: Workload, policy: SimPolicy, options: SimOptions): SimResult {
  const random = seededRandom(deriveSeed(options.seed, `durations:${workload.name}`));
  const gpus: SimGpu[] = workload.gpus.map((g) => ({ capacityMiB: g.memoryMiB, runningMiB: 0, idleMiB: 0, resident: new Map(), busy: 0 }));
  const tenantNames = workload.tenants.map((t) => t.name);
  const tenantIndex = new Map(tenantNames.map((n, i) => [n, i]));
  const heldGpus = new Float64Array(tenantNames.length);
  const waitingReady = new Int32Array(tenantNames.length);
  const saturatedGpuSeconds = new Float64Array(tenantNames.length);
  let saturatedSeconds = 0;

  const events = eventQueue<SimEvent>();
  let seq = 0;
  workload.arrivals.forEach((a, i) => events.push({ time: a.at, seq: seq++, kind: ARRIVAL, ref: i }));
  const attempts: Attempt[] = [];
  const runs = new Map<string, RunTrack>();

  let now = 0;
  let busyGpuSeconds = 0;
  let busyGpus = 0;
  let oomEvents = 0;
  let modelLoads = 0;
  let kills = 0;
  let rejected = 0;
  let failedRuns = 0;
  let completed = 0;
  let policyMs = 0;
  let lastCompletion = 0;
  let batchMakespan: number | null = null;
  const interactiveLatency: number[] = [];
  const rejections: { runId: string; field: string; message: string }[] = [];
  const total = workload.arrivals.length;
  let workTotal = 0;
  let pathBound = 0;
  // Work that only GPUs of at least a given size can do, for the capacity part of the lower bound.
  const workBySize = new Map<number, number>();

  const time = <T>(fn: () => T): T => {
    if (options.stopwatch === undefined) return fn();
    const t0 = options.stopwatch();
    const out = fn();
    policyMs += options.stopwatch() - t0;
    return out;
  };

  const tenantOf = (run: RunTrack) => tenantIndex.get(run.spec.tenant) ?? -1;

  const advance = (to: number) => {
    const dt = to - now;
    if (dt > 0) {
      busyGpuSeconds += busyGpus * dt;
      if (tenantNames.length > 1 && waitingReady.every((w) => w > 0)) {
        saturatedSeconds += dt;
        for (let t = 0; t < tenantNames.length; t++) saturatedGpuSeconds[t]! += heldGpus[t]! * dt;
      }
    }
    now = to;
  };

  const arrive = (i: number) => {
    const { run } = workload.arrivals[i]!;
    const result = time(() => policy.submit(run, now));
    if (!result.accepted) {
      rejected++;
      rejections.push({ runId: run.id, field: result.field, message: result.message });
      return;
    }
    const track = trackRun(run, now, workload.noise, random);
    const { dag, actual } = track;
    runs.set(run.id, track);
    const t = tenantOf(track);
    track.pending.forEach((p, k) => {
      if (p === 0 && run.stages[k]!.gpus > 0 && t >= 0) waitingReady[t]!++;
    });
    const path = criticalPath(dag, Array.from(actual));
    if (now + path > pathBound) pathBound = now + path;
    run.stages.forEach((s, k) => {
      const work = s.gpus * actual[k]!;
      workTotal += work;
      if (s.gpus > 0) workBySize.set(s.vramMiB, (workBySize.get(s.vramMiB) ?? 0) + work);
    });
  };

  const loadModel = (g: SimGpu, stage: StageSpec): boolean | "oom" => {
    const model = stage.model;
    const own = model === undefined ? undefined : g.resident.get(model);
    let free = g.capacityMiB - g.runningMiB - g.idleMiB + (own !== undefined && own.inUse === 0 ? own.mib : 0);
    if (free < stage.vramMiB) {
      // Unload idle models, least recently used first, as the runtime would under memory pressure.
      const idle = [...g.resident.entries()].filter(([name, m]) => m.inUse === 0 && name !== model).sort((a, b) => a[1].lastUse - b[1].lastUse || (a[0] < b[0] ? -1 : 1));
      for (const [name, m] of idle) {
        if (free >= stage.vramMiB) break;
        g.resident.delete(name);
        g.idleMiB -= m.mib;
        free += m.mib;
      }
    }
    if (free < stage.vramMiB) return "oom";
    return own === undefined && model !== undefined;
  };

  const start = (runId: string, stageId: string, gpuList: readonly number[], evict: readonly { gpu: number; model: string }[]) => {
    const run = runs.get(runId);
    const index = run?.byId.get(stageId);
    if (run === undefined || index === undefined) throw new Error(`policy ${policy.name} started unknown stage '${stageId}' of run '${runId}'`);
    const stage = run.spec.stages[index]!;
    for (const e of evict) {
      const g = gpus[e.gpu]!;
      const m = g.resident.get(e.model);
      if (m !== undefined && m.inUse === 0) {
        g.resident.delete(e.model);
        g.idleMiB -= m.mib;
      }
    }
    let ok = true;
    const needsLoad: number[] = [];
    for (const gi of gpuList) {
      const r = loadModel(gpus[gi]!, stage);
      if (r === "oom") ok = false;
      else if (r) needsLoad.push(gi);
    }
    let end: number;
    if (!ok) {
      oomEvents++;
      end = now + OOM_DETECT_S;
    } else {
      const model = stage.model;
      const modelMiB = Math.min(stage.vramMiB, stage.modelMiB ?? stage.vramMiB);
      for (const gi of gpuList) {
        const g = gpus[gi]!;
        if (model !== undefined) {
          let m = g.resident.get(model);
          if (m === undefined) {
            m = { mib: modelMiB, lastUse: now, inUse: 0 };
            g.resident.set(model, m);
          } else if (m.inUse === 0) g.idleMiB -= m.mib;
          m.inUse++;
          m.lastUse = now;
        }
        g.runningMiB += stage.vramMiB;
      }
      modelLoads += needsLoad.length;
      const load = needsLoad.length > 0 ? stage.modelLoadS : 0;
      end = now + (load + run.actual[index]!);
    }
    for (const gi of gpuList) {
      if (gpus[gi]!.busy++ === 0) busyGpus++;
    }
    const t = tenantOf(run);
    if (t >= 0 && stage.gpus > 0) {
      waitingReady[t]!--;
      heldGpus[t]! += gpuList.length;
    }
    attempts.push({ run, index, gpus: gpuList, ok, end, cancelled: false });
    events.push({ time: end, seq: seq++, kind: FINISH, ref: attempts.length - 1 });
  };

  const release = (a: Attempt) => {
    const stage = a.run.spec.stages[a.index]!;
    for (const gi of a.gpus) {
      const g = gpus[gi]!;
      if (--g.busy === 0) busyGpus--;
      if (!a.ok) continue;
      g.runningMiB -= stage.vramMiB;
      const m = stage.model === undefined ? undefined : g.resident.get(stage.model);
      if (m !== undefined && --m.inUse === 0) {
        g.idleMiB += m.mib;
        m.lastUse = now;
      }
    }
    const t = tenantOf(a.run);
    if (t >= 0 && stage.gpus > 0) heldGpus[t]! -= a.gpus.length;
  };

  const finish = (a: Attempt) => {
    if (a.cancelled) return;
    release(a);
    const run = a.run;
    const runId = run.spec.id;
    const t = tenantOf(run);
    time(() => policy.finished(runId, run.spec.stages[a.index]!.id, now, a.ok ? "succeeded" : "failed"));
    if (!a.ok) {
      if (t >= 0) waitingReady[t]!++;
      return;
    }
    run.remaining--;
    for (const c of run.dag.children[a.index]!) {
      if (--run.pending[c]! === 0 && t >= 0 && run.spec.stages[c]!.gpus > 0) waitingReady[t]!++;
    }
    if (run.remaining === 0) {
      runs.delete(runId);
      completed++;
      lastCompletion = now;
      if (run.spec.priority === "interactive") interactiveLatency.push(now - run.at);
      else batchMakespan = now;
      options.onProgress?.(completed + rejected, total);
    }
  };

  const killAttempt = (runId: string, stageId: string) => {
    for (let i = attempts.length - 1; i >= 0; i--) {
      const a = attempts[i]!;
      if (a.cancelled || a.run.spec.id !== runId || a.run.spec.stages[a.index]!.id !== stageId) continue;
      a.cancelled = true;
      release(a);
      kills++;
      const t = tenantOf(a.run);
      if (t >= 0) waitingReady[t]!++;
      return;
    }
  };

  while (events.size > 0) {
    const t = events.peek()!.time;
    advance(t);
    while (events.size > 0 && events.peek()!.time === t) {
      const e = events.pop()!;
      if (e.kind === ARRIVAL) arrive(e.ref);
      else finish(attempts[e.ref]!);
    }
    const step = time(() => policy.step(now));
    for (const k of step.kills) killAttempt(k.runId, k.stageId);
    for (const d of step.starts) start(d.runId, d.stageId, d.gpus, d.evict);
  }
  // Runs a policy failed for good, or left behind, count as failed.
  failedRuns = workload.arrivals.length - rejected - completed;

  const totalGpus = workload.gpus.length;
  let capacityBound = workTotal / totalGpus;
  for (const [size] of workBySize) {
    let work = 0;
    for (const [s, w] of workBySize) if (s >= size) work += w;
    const able = workload.gpus.filter((g) => g.memoryMiB - (workload.settings?.headroomMiB ?? 0) >= size).length;
    if (able > 0) capacityBound = Math.max(capacityBound, work / able);
  }
  const lowerBound = workload.lowerBoundS ?? Math.max(pathBound, capacityBound);
  const weighted = workload.tenants.map((tn, i) => saturatedGpuSeconds[i]! / tn.weight);
  const decisions = policy.decisionCount;
  const row: ResultRow = {
    workload: workload.name,
    policy: policy.name,
    makespan_s: completed > 0 ? round(lastCompletion) : null,
    lower_bound_s: round(lowerBound),
    best_known_s: round(workload.bestKnownS ?? null),
    interactive_p50_s: round(percentile(interactiveLatency, 50)),
    interactive_p99_s: round(percentile(interactiveLatency, 99)),
    batch_makespan_s: round(batchMakespan),
    oom_events: oomEvents,
    model_loads: modelLoads,
    gpu_busy_pct: lastCompletion > 0 ? round((100 * busyGpuSeconds) / (totalGpus * lastCompletion), 2) : null,
    jain_fairness: saturatedSeconds > 0 ? round(jainIndex(weighted), 4) : null,
    decisions_per_s: options.stopwatch !== undefined && policyMs > 0 ? Math.round(decisions / (policyMs / 1000)) : null,
  };
  return {
    row,
    details: {
      runsSubmitted: workload.arrivals.length,
      runsCompleted: completed,
      runsRejected: rejected,
      runsFailed: failedRuns,
      rejections,
      kills,
      decisions,
      saturatedGpuSeconds: Object.fromEntries(tenantNames.map((n, i) => [n, round(saturatedGpuSeconds[i]!)!])),
      saturatedSeconds: round(saturatedSeconds)!,
    },
  };
}
