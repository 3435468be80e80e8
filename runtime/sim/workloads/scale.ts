/**
 * `scale`: 1,024 GPUs and 100,000 stages queued at once (20,000 runs of four parallel stages and a
 * join, 8 tenants, mixed sizes and models), to measure the scheduler's decisions per second.
 */
import { MIB_PER_GIB, parsePoolSpec } from "../../scheduler/inventory.ts";
import { deriveSeed, seededRandom } from "../../scheduler/prng.ts";
import type { StageSpec } from "../../scheduler/types.ts";
import type { Arrival, Workload } from "../workload.ts";

export const SCALE_POOL = "64x8xH100-80,32x8xL40S-48,32x8xA10G-24";

export function scaleWorkload(seed: number, runs = 20_000): Workload {
  const random = seededRandom(deriveSeed(seed, "scale"));
  const tenants = Array.from({ length: 8 }, (_, i) => ({ name: `tenant-${i}`, weight: 1 + (i % 3) }));
  const models = Array.from({ length: 24 }, (_, i) => `model-${i}`);
  const sizesGiB = [6, 10, 14, 20, 30, 40, 70];
  const arrivals: Arrival[] = [];
  for (let r = 0; r < runs; r++) {
    const stages: StageSpec[] = [];
    for (let k = 0; k < 4; k++) {
      const gib = sizesGiB[Math.floor(random() * sizesGiB.length)]!;
      const gang = random() < 0.02 ? 2 : 1;
      stages.push({
        id: `s${k}`,
        needs: [],
        gpus: gang,
        vramMiB: gib * MIB_PER_GIB,
        model: models[Math.floor(random() * models.length)]!,
        modelMiB: Math.floor(gib * 0.6) * MIB_PER_GIB,
        durationS: 10 + Math.floor(random() * 110),
        modelLoadS: 5 + Math.floor(random() * 20),
      });
    }
    stages.push({ id: "join", needs: ["s0", "s1", "s2", "s3"], gpus: 1, vramMiB: 8 * MIB_PER_GIB, model: "joiner", modelMiB: 2 * MIB_PER_GIB, durationS: 5, modelLoadS: 2 });
    arrivals.push({ at: 0, run: { id: `run-${r}`, tenant: tenants[r % tenants.length]!.name, priority: random() < 0.1 ? "interactive" : "batch", stages } });
  }
  return { name: "scale", gpus: parsePoolSpec(SCALE_POOL), tenants, arrivals, noise: 0.1, settings: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 600 } };
}
