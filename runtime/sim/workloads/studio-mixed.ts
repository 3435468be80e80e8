/**
 * `studio-mixed`: one simulated hour of a studio sharing a heterogeneous pool. Three tenants
 * (weights 2:1:1) send interactive text-to-image runs continuously, batch catalog renders
 * steadily, and bursts of large batch video runs; every model has a load cost.
 */
import { parsePoolSpec, MIB_PER_GIB } from "../../scheduler/inventory.ts";
import { deriveSeed, seededRandom, type Random } from "../../scheduler/prng.ts";
import type { RunSpec, StageSpec } from "../../scheduler/types.ts";
import type { Arrival, Workload } from "../workload.ts";

export const STUDIO_POOL = "8xH100-80,8xL40S-48,16xA10G-24";
export const STUDIO_HOUR_S = 3600;

const GiB = MIB_PER_GIB;

/** Models with their resident weights and load time. */
export const STUDIO_MODELS = {
  "sdxl-base": { mib: 7 * GiB, loadS: 12 },
  "juggernaut-xl": { mib: 7 * GiB, loadS: 12 },
  "realvis-xl": { mib: 7 * GiB, loadS: 12 },
  "dreamshaper-xl": { mib: 7 * GiB, loadS: 12 },
  "pony-xl": { mib: 7 * GiB, loadS: 12 },
  "animagine-xl": { mib: 7 * GiB, loadS: 12 },
  "playground-v2.5": { mib: 7 * GiB, loadS: 12 },
  "sdxl-turbo": { mib: 7 * GiB, loadS: 12 },
  "esrgan-4x": { mib: 1 * GiB, loadS: 2 },
  "umt5-xxl": { mib: 11 * GiB, loadS: 15 },
  "hunyuan-video": { mib: 26 * GiB, loadS: 45 },
  "video-vae": { mib: 1 * GiB, loadS: 4 },
  rife: { mib: 1 * GiB, loadS: 2 },
} as const;

type ModelName = keyof typeof STUDIO_MODELS;

/** The SDXL-class checkpoints image runs pick from. */
export const CHECKPOINTS: readonly ModelName[] = ["sdxl-base", "juggernaut-xl", "realvis-xl", "dreamshaper-xl", "pony-xl", "animagine-xl", "playground-v2.5", "sdxl-turbo"];

function stage(id: string, needs: string[], model: ModelName | null, vramGiB: number, durationS: number): StageSpec {
  if (model === null) return { id, needs, gpus: 0, vramMiB: 0, durationS, modelLoadS: 0 };
  const m = STUDIO_MODELS[model];
  return { id, needs, gpus: 1, vramMiB: vramGiB * GiB, model, modelMiB: m.mib, durationS, modelLoadS: m.loadS };
}

/** Interactive text-to-image: SDXL-class generation, then a 4x upscale (images may cross GPUs). */
export function textToImageStages(checkpoint: ModelName = "sdxl-base"): StageSpec[] {
  return [stage("generate", [], checkpoint, 14, 6), stage("upscale", ["generate"], "esrgan-4x", 6, 2)];
}

/** Batch catalog render: 8 SDXL-class batches, each upscaled, then a CPU contact sheet. */
export function catalogStages(checkpoint: ModelName = "sdxl-base"): StageSpec[] {
  const stages: StageSpec[] = [];
  for (let i = 0; i < 8; i++) {
    stages.push(stage(`generate-${i}`, [], checkpoint, 14, 40));
    stages.push(stage(`upscale-${i}`, [`generate-${i}`], "esrgan-4x", 8, 15));
  }
  stages.push(stage("contact-sheet", Array.from({ length: 8 }, (_, i) => `upscale-${i}`), null, 0, 5));
  return stages;
}

/** Batch video: text encoding, 4 clips sampled (80 GiB class), VAE decode, upscaled in chunks, interpolated, muxed. */
export function videoStages(): StageSpec[] {
  const stages: StageSpec[] = [stage("encode-text", [], "umt5-xxl", 18, 8)];
  const clips = 4;
  for (let c = 0; c < clips; c++) {
    stages.push(stage(`sample-${c}`, ["encode-text"], "hunyuan-video", 70, 180));
    stages.push(stage(`decode-${c}`, [`sample-${c}`], "video-vae", 30, 30));
    const chunks: string[] = [];
    for (let k = 0; k < 3; k++) {
      stages.push(stage(`upscale-${c}-${k}`, [`decode-${c}`], "esrgan-4x", 8, 25));
      chunks.push(`upscale-${c}-${k}`);
    }
    stages.push(stage(`interpolate-${c}`, chunks, "rife", 6, 20));
  }
  stages.push(stage("mux", Array.from({ length: clips }, (_, c) => `interpolate-${c}`), null, 0, 5));
  return stages;
}

export const STUDIO_TENANTS = [
  { name: "animation", weight: 2, interactiveEveryS: 12, catalogEveryS: 50, videoBursts: [{ at: 60, runs: 6 }, { at: 1200, runs: 6 }, { at: 2400, runs: 6 }] },
  { name: "design", weight: 1, interactiveEveryS: 12, catalogEveryS: 100, videoBursts: [{ at: 300, runs: 3 }, { at: 1500, runs: 3 }, { at: 2700, runs: 3 }] },
  { name: "marketing", weight: 1, interactiveEveryS: 12, catalogEveryS: 100, videoBursts: [{ at: 600, runs: 3 }, { at: 1800, runs: 3 }, { at: 3000, runs: 3 }] },
] as const;

/** A tenant's checkpoint: Zipf-like preference over its own ordering of the catalogue. */
function pickCheckpoint(random: Random, tenantIndex: number): ModelName {
  const u = random();
  let k = 0;
  // P(k) ∝ 1/(k+1): each tenant mostly uses a few favourites.
  const weights = CHECKPOINTS.map((_, i) => 1 / (i + 1));
  let acc = u * weights.reduce((a, b) => a + b, 0);
  while (k < weights.length - 1 && acc > weights[k]!) acc -= weights[k++]!;
  return CHECKPOINTS[(k + 3 * tenantIndex) % CHECKPOINTS.length]!;
}

/** Exponential inter-arrival times with the given mean (a Poisson process). */
function poissonTimes(random: Random, meanS: number, endS: number): number[] {
  const times: number[] = [];
  let t = -Math.log(1 - random()) * meanS;
  while (t < endS) {
    times.push(Math.round(t * 1000) / 1000);
    t += -Math.log(1 - random()) * meanS;
  }
  return times;
}

export function studioMixedWorkload(seed: number): Workload {
  const arrivals: Arrival[] = [];
  for (const [tenantIndex, tenant] of STUDIO_TENANTS.entries()) {
    const random = seededRandom(deriveSeed(seed, `studio-mixed:${tenant.name}`));
    const add = (at: number, kind: string, n: number, priority: RunSpec["priority"], stages: StageSpec[]) =>
      arrivals.push({ at, run: { id: `${tenant.name}/${kind}-${n}`, tenant: tenant.name, priority, stages } });
    poissonTimes(random, tenant.interactiveEveryS, STUDIO_HOUR_S).forEach((at, n) => add(at, "t2i", n, "interactive", textToImageStages(pickCheckpoint(random, tenantIndex))));
    poissonTimes(random, tenant.catalogEveryS, STUDIO_HOUR_S).forEach((at, n) => add(at, "catalog", n, "batch", catalogStages(pickCheckpoint(random, tenantIndex))));
    let v = 0;
    for (const burst of tenant.videoBursts) for (let k = 0; k < burst.runs; k++) add(burst.at, "video", v++, "batch", videoStages());
  }
  arrivals.sort((a, b) => a.at - b.at || (a.run.id < b.run.id ? -1 : 1));
  return {
    name: "studio-mixed",
    gpus: parsePoolSpec(STUDIO_POOL),
    tenants: STUDIO_TENANTS.map((t) => ({ name: t.name, weight: t.weight })),
    arrivals,
    noise: 0.15,
    settings: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 600 },
  };
}
