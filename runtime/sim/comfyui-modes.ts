/**
 * Segmented against whole-graph scheduling of ComfyUI prompts: the same prompts, arriving at the same
 * times with the same priorities, run on the same simulated GPUs under gpufabric's scheduler, once with
 * every GPU-affine segment a stage of its own and once with every prompt one stage on one GPU.
 *
 * Inputs:
 * - `prompts`: imported ComfyUI graphs (`parseWorkflow`, `loadWorkflowFile`, or `comfyPromptsFromDir`).
 * - `gpus`: how many simulated GPUs (H100s of 80 GiB, 8 to a node; default 8), or a pool of your own.
 * - `seed`: picks the arrival order and times and which runs are interactive (default 1).
 * - `rounds`: how many times each prompt is submitted (default 1).
 * - `interactiveShare`: the share of runs submitted as interactive, spread evenly over the arrival
 *   order (default 0.3); the others are batch.
 * - `meanGapS`: mean seconds between arrivals (exponential gaps; 0, the default 1, all at once).
 * - `noise`: actual durations vary by up to ±noise around the estimates (default 0). The simulator draws
 *   it per stage, so the two modes see different draws: leave it at 0 for a like-for-like comparison.
 * - `costModel`: the cost model that estimates the stages (default: a fresh one, the cost table alone).
 *
 * Same inputs, same figures: nothing here reads a clock.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { ComfyUiMode } from "../config/schema.ts";
import { CostModel, parseWorkflowText, stagesFor, type WorkflowGraph } from "../graph/index.ts";
import { stageSpecFromGraph } from "../scheduler/from-graph.ts";
import { parsePoolSpec, type GpuSpec } from "../scheduler/inventory.ts";
import { deriveSeed, seededRandom } from "../scheduler/prng.ts";
import type { PriorityClass } from "../scheduler/types.ts";
import { GpufabricPolicy } from "./gpufabric-policy.ts";
import { simulate } from "./simulator.ts";
import type { Arrival, Workload } from "./workload.ts";

export interface CompareComfyModesOptions {
  readonly prompts: readonly WorkflowGraph[];
  readonly gpus?: number | readonly GpuSpec[];
  readonly seed?: number;
  readonly rounds?: number;
  readonly interactiveShare?: number;
  readonly meanGapS?: number;
  readonly noise?: number;
  readonly costModel?: CostModel;
}

/** What one mode achieved. Times in simulated seconds; null where nothing was measured (no interactive run completed, …). */
export interface ComfyModeFigures {
  readonly makespan_s: number | null;
  readonly interactive_p50_s: number | null;
  readonly interactive_p99_s: number | null;
  readonly batch_makespan_s: number | null;
  /** Stages submitted, over all runs. */
  readonly stages: number;
  readonly runs_completed: number;
  /** Runs refused because a stage fits no GPU of the pool (the same runs in both modes). */
  readonly runs_rejected: number;
  readonly oom_events: number;
  readonly model_loads: number;
  readonly gpu_busy_pct: number | null;
}

export interface ComfyModesComparison {
  readonly gpus: number;
  readonly prompts: number;
  readonly runs: number;
  readonly interactive_runs: number;
  readonly seed: number;
  readonly segmented: ComfyModeFigures;
  readonly whole_graph: ComfyModeFigures;
}

const DEFAULTS = { gpus: 8, seed: 1, rounds: 1, interactiveShare: 0.3, meanGapS: 1, noise: 0 } as const;

/** Runs the prompts in both modes; throws an Error naming the option at fault. */
export function compareComfyModes(options: CompareComfyModesOptions): ComfyModesComparison {
  const seed = options.seed ?? DEFAULTS.seed;
  const rounds = options.rounds ?? DEFAULTS.rounds;
  const share = options.interactiveShare ?? DEFAULTS.interactiveShare;
  const meanGapS = options.meanGapS ?? DEFAULTS.meanGapS;
  const noise = options.noise ?? DEFAULTS.noise;
  if (options.prompts.length === 0) throw new Error("prompts: give at least one ComfyUI prompt");
  if (options.prompts.some((g) => g.format !== "comfyui")) throw new Error("prompts: every workflow must be a ComfyUI prompt (format 'comfyui')");
  if (!Number.isInteger(seed) || seed < 0) throw new Error("seed: must be a non-negative integer");
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("rounds: must be a positive integer");
  if (!(share >= 0 && share <= 1)) throw new Error("interactiveShare: must be between 0 and 1");
  if (!(meanGapS >= 0 && Number.isFinite(meanGapS))) throw new Error("meanGapS: must be a non-negative number of seconds");
  if (!(noise >= 0 && noise < 1)) throw new Error("noise: must be at least 0 and below 1");
  const gpus = typeof options.gpus === "object" ? options.gpus : poolOf(options.gpus ?? DEFAULTS.gpus);
  const costModel = options.costModel ?? new CostModel();

  const plan = arrivalPlan(options.prompts.length * rounds, seed, share, meanGapS);
  const byMode = (mode: ComfyUiMode): ComfyModeFigures => {
    const stagesOf = options.prompts.map((graph) => stagesFor(graph, costModel, { comfyuiMode: mode }).map(stageSpecFromGraph));
    const arrivals: Arrival[] = plan.map((p) => {
      const index = p.run % options.prompts.length;
      const stages = stagesOf[index]!;
      return { at: p.at, run: { id: `studio/${options.prompts[index]!.name}-${p.run}`, tenant: "studio", priority: p.priority, stages } };
    });
    const workload: Workload = {
      name: `comfyui-${mode}`,
      gpus,
      tenants: [{ name: "studio", weight: 1 }],
      arrivals,
      noise,
      settings: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 600 },
    };
    const policy = new GpufabricPolicy({ gpus, tenants: workload.tenants, settings: workload.settings!, seed });
    const { row, details } = simulate(workload, policy, { seed });
    return {
      makespan_s: row.makespan_s,
      interactive_p50_s: row.interactive_p50_s,
      interactive_p99_s: row.interactive_p99_s,
      batch_makespan_s: row.batch_makespan_s,
      stages: arrivals.reduce((sum, a) => sum + a.run.stages.length, 0),
      runs_completed: details.runsCompleted,
      runs_rejected: details.runsRejected,
      oom_events: row.oom_events,
      model_loads: row.model_loads,
      gpu_busy_pct: row.gpu_busy_pct,
    };
  };
  return {
    gpus: gpus.length,
    prompts: options.prompts.length,
    runs: plan.length,
    interactive_runs: plan.filter((p) => p.priority === "interactive").length,
    seed,
    segmented: byMode("segmented"),
    whole_graph: byMode("whole-graph"),
  };
}

function poolOf(count: number): GpuSpec[] {
  if (!Number.isInteger(count) || count < 1) throw new Error("gpus: must be a positive number of GPUs (or a pool of GpuSpec)");
  return parsePoolSpec(`${count}xH100-80`, "gpus");
}

/**
 * When each run arrives and at which priority, shared by both modes. Run k submits prompt
 * k mod (number of prompts); the arrival order is a seeded shuffle, and in that order exactly
 * floor(n × share) runs are interactive, spread evenly.
 */
function arrivalPlan(count: number, seed: number, share: number, meanGapS: number): { run: number; at: number; priority: PriorityClass }[] {
  const random = seededRandom(deriveSeed(seed, "comfyui-modes"));
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let t = 0;
  return order.map((run, position) => {
    const interactive = Math.floor((position + 1) * share) > Math.floor(position * share);
    const at = Math.round(t * 1000) / 1000;
    t += meanGapS === 0 ? 0 : -Math.log(1 - random()) * meanGapS;
    return { run, at, priority: interactive ? "interactive" : "batch" };
  });
}

/** Every `.json` prompt of a folder, in name order; files that do not import are listed with the reason. */
export function comfyPromptsFromDir(dir: string): { prompts: WorkflowGraph[]; skipped: { file: string; reason: string }[] } {
  const prompts: WorkflowGraph[] = [];
  const skipped: { file: string; reason: string }[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
    try {
      const graph = parseWorkflowText(readFileSync(join(dir, file), "utf8"), file, { format: "comfyui" });
      prompts.push(graph);
    } catch (err) {
      skipped.push({ file, reason: (err as Error).message.split("\n")[0]! });
    }
  }
  return { prompts, skipped };
}

