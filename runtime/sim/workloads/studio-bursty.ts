/**
 * `studio-bursty`: four simulated hours of a studio whose demand comes in bursts, the case elastic pools
 * are for. A person opens a session and runs dozens of variations of one prompt (interactive text-to-image,
 * a few seconds apart), then goes quiet; a team starts a production sprint of catalog renders (batch, all
 * submitted at once); between them the pool sits idle, and nobody works over the lunch gap.
 * Deterministic by seed.
 */
import { deriveSeed, seededRandom, type Random } from "../../scheduler/prng.ts";
import type { RunSpec } from "../../scheduler/types.ts";
import type { ElasticPoolSpec, ElasticWorkload } from "../elastic.ts";
import type { Arrival } from "../workload.ts";
import { CHECKPOINTS, catalogStages, textToImageStages } from "./studio-mixed.ts";

export const BURSTY_HORIZON_S = 4 * 3600;

/** Working periods (seconds from the start); the gap between them is lunch. */
export const BURSTY_WINDOWS: readonly (readonly [number, number])[] = [
  [0, 5400],
  [8100, BURSTY_HORIZON_S],
];

export const BURSTY_TENANTS = [
  { name: "animation", weight: 2, sessionEveryS: 1500, sprints: 1 },
  { name: "design", weight: 1, sessionEveryS: 1800, sprints: 1 },
  { name: "marketing", weight: 1, sessionEveryS: 1800, sprints: 1 },
] as const;

/** Variations per session, seconds between them (mean: a look at the last image, a tweak, queue again), catalog renders per sprint. */
export const BURSTY_SESSION_RUNS: readonly [number, number] = [20, 60];
export const BURSTY_VARIATION_GAP_S = 8;
export const BURSTY_SPRINT_RUNS: readonly [number, number] = [10, 16];

/**
 * The elastic pool the benchmark and `gpufabric simulate --elastic` use for it: nodes of 4 L40S (48 GiB),
 * two kept warm, up to 8; two minutes to provision a node, five minutes of surplus before one goes.
 * Two warm nodes rather than one: a node that comes up holds no model, and the floor's GPUs are where the
 * checkpoints of the next session are still resident (one node's 4 GPUs cannot keep every tenant's
 * favourites, and a session whose first variations each load a checkpoint misses the latency target).
 */
export const BURSTY_POOL: ElasticPoolSpec = {
  model: "L40S",
  memoryGiB: 48,
  gpusPerWorker: 4,
  minWorkers: 2,
  maxWorkers: 8,
  provisionDelayS: 120,
  cooldownS: 300,
  pricePerGpuHour: 1.8,
};

function between(random: Random, [lo, hi]: readonly [number, number]): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

function exponential(random: Random, meanS: number): number {
  return -Math.log(1 - random()) * meanS;
}

const ms = (t: number) => Math.round(t * 1000) / 1000;

export function studioBurstyWorkload(seed: number): ElasticWorkload {
  const arrivals: Arrival[] = [];
  for (const [tenantIndex, tenant] of BURSTY_TENANTS.entries()) {
    const random = seededRandom(deriveSeed(seed, `studio-bursty:${tenant.name}`));
    const add = (at: number, id: string, priority: RunSpec["priority"], stages: RunSpec["stages"]) =>
      arrivals.push({ at: ms(at), run: { id: `${tenant.name}/${id}`, tenant: tenant.name, priority, stages } });
    let session = 0;
    for (const [from, to] of BURSTY_WINDOWS) {
      for (let t = from + exponential(random, tenant.sessionEveryS); t < to; t += exponential(random, tenant.sessionEveryS)) {
        // One prompt, one checkpoint, dozens of variations a few seconds apart.
        const checkpoint = CHECKPOINTS[(between(random, [0, 2]) + 3 * tenantIndex) % CHECKPOINTS.length]!;
        const n = between(random, BURSTY_SESSION_RUNS);
        let at = t;
        for (let k = 0; k < n && at < to; k++) {
          add(at, `s${session}-v${k}`, "interactive", textToImageStages(checkpoint));
          at += exponential(random, BURSTY_VARIATION_GAP_S);
        }
        session++;
      }
    }
    for (let s = 0; s < tenant.sprints; s++) {
      // A sprint starts inside a working period, early enough to finish within it.
      const [from, to] = BURSTY_WINDOWS[between(random, [0, BURSTY_WINDOWS.length - 1])]!;
      const at = from + random() * (to - from - 1800);
      const runs = between(random, BURSTY_SPRINT_RUNS);
      for (let k = 0; k < runs; k++) add(at, `sprint${s}-catalog${k}`, "batch", catalogStages(CHECKPOINTS[(tenantIndex + k) % CHECKPOINTS.length]!));
    }
  }
  arrivals.sort((a, b) => a.at - b.at || (a.run.id < b.run.id ? -1 : 1));
  return {
    name: "studio-bursty",
    tenants: BURSTY_TENANTS.map((t) => ({ name: t.name, weight: t.weight })),
    arrivals,
    noise: 0.15,
    horizonS: BURSTY_HORIZON_S,
    settings: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 600 },
  };
}

/** GPU-seconds of work in a workload (estimates), for sizing a fixed pool to the average. */
export function workGpuSeconds(workload: ElasticWorkload): number {
  let total = 0;
  for (const a of workload.arrivals) for (const s of a.run.stages) total += s.gpus * s.durationS;
  return total;
}
