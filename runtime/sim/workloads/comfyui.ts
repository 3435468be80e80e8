/**
 * `comfyui`: real ComfyUI API prompts, segmented into GPU-affine stages by the cost model, submitted
 * repeatedly by three tenants (weights 2:1:1) on the mixed studio pool. Short prompts are
 * interactive, long ones (video, large batches) batch.
 */
import { parsePoolSpec, type GpuSpec } from "../../scheduler/inventory.ts";
import { deriveSeed, seededRandom } from "../../scheduler/prng.ts";
import type { RunSpec, StageSpec } from "../../scheduler/types.ts";
import type { Arrival, Workload } from "../workload.ts";
import { STUDIO_POOL } from "./studio-mixed.ts";

export interface NamedStages {
  readonly name: string;
  readonly stages: readonly StageSpec[];
}

/** Runs whose estimated work is at most this many seconds count as interactive. */
export const INTERACTIVE_MAX_WORK_S = 30;
export const COMFYUI_TENANTS = [
  { name: "animation", weight: 2, everyS: 6 },
  { name: "design", weight: 1, everyS: 12 },
  { name: "marketing", weight: 1, everyS: 12 },
] as const;
export const COMFYUI_WINDOW_S = 1800;

export function comfyuiWorkload(workflows: readonly NamedStages[], seed: number, gpus: readonly GpuSpec[] = parsePoolSpec(STUDIO_POOL)): Workload {
  if (workflows.length === 0) throw new Error("the comfyui workload needs at least one workflow");
  const arrivals: Arrival[] = [];
  for (const tenant of COMFYUI_TENANTS) {
    const random = seededRandom(deriveSeed(seed, `comfyui:${tenant.name}`));
    let t = -Math.log(1 - random()) * tenant.everyS;
    let n = 0;
    while (t < COMFYUI_WINDOW_S) {
      const wf = workflows[Math.floor(random() * workflows.length)]!;
      const work = wf.stages.reduce((sum, s) => sum + s.durationS, 0);
      const run: RunSpec = { id: `${tenant.name}/${wf.name}-${n++}`, tenant: tenant.name, priority: work <= INTERACTIVE_MAX_WORK_S ? "interactive" : "batch", stages: wf.stages };
      arrivals.push({ at: Math.round(t * 1000) / 1000, run });
      t += -Math.log(1 - random()) * tenant.everyS;
    }
  }
  arrivals.sort((a, b) => a.at - b.at || (a.run.id < b.run.id ? -1 : 1));
  return {
    name: "comfyui",
    gpus,
    tenants: COMFYUI_TENANTS.map((t) => ({ name: t.name, weight: t.weight })),
    arrivals,
    noise: 0.15,
    settings: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 600 },
  };
}
