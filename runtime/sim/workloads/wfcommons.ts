/**
 * WfCommons (WfFormat) instances as the pure DAG problem: every task a 1-GPU stage with its
 * recorded runtime, identical GPUs, no model loads or transfers.
 */
import { z } from "zod";
import { ValidationError, issuesFromZod } from "../../config/errors.ts";
import { buildDag, criticalPath, type Dag } from "../../scheduler/dag.ts";
import { parsePoolSpec, type GpuSpec } from "../../scheduler/inventory.ts";
import { listSchedule, perturbedRank } from "../../scheduler/planner.ts";
import { upwardRank } from "../../scheduler/dag.ts";
import { deriveSeed, seededRandom } from "../../scheduler/prng.ts";
import type { RunSpec, StageSpec } from "../../scheduler/types.ts";
import type { Workload } from "../workload.ts";

export const WFCOMMONS_POOL = "16xH100-80";
export const WFCOMMONS_TENANT = "wfcommons";
/** VRAM each task asks for: any GPU fits it, so only the DAG and the runtimes matter. */
const TASK_VRAM_MIB = 1024;

const name = z.string().min(1);
const specTask = z.object({ id: name.optional(), name, parents: z.array(name).default([]) });
const execTask = z.object({ id: name.optional(), name: name.optional(), runtimeInSeconds: z.number().nonnegative() });
const legacyTask = z.object({ id: name.optional(), name, parents: z.array(name).default([]), runtime: z.number().nonnegative().optional(), runtimeInSeconds: z.number().nonnegative().optional() });

/** WfFormat 1.5+: the DAG under workflow.specification, runtimes under workflow.execution. */
const CurrentSchema = z.object({
  name: z.string().default("workflow"),
  workflow: z.object({
    specification: z.object({ tasks: z.array(specTask).min(1, "needs at least one task") }),
    execution: z.object({ tasks: z.array(execTask) }),
  }),
});
/** WfFormat up to 1.4: tasks with their runtimes under workflow.tasks. */
const LegacySchema = z.object({
  name: z.string().default("workflow"),
  workflow: z.object({ tasks: z.array(legacyTask).min(1, "needs at least one task") }),
});

export interface DagProblem {
  readonly name: string;
  readonly stages: readonly StageSpec[];
  readonly dag: Dag;
  readonly durations: readonly number[];
}

/** Whether a parsed JSON document looks like a WfFormat instance. */
export function isWfFormat(doc: unknown): boolean {
  if (typeof doc !== "object" || doc === null) return false;
  const wf = (doc as { workflow?: unknown }).workflow;
  return typeof wf === "object" && wf !== null && ("specification" in wf || "tasks" in wf);
}

/** Reads a WfFormat instance (schema 1.4 to 1.6) into stages; errors name the field. */
export function parseWfFormat(doc: unknown, source = "WfFormat instance"): DagProblem {
  // Validate against the version the document looks like, so errors name its fields.
  const wfField = typeof doc === "object" && doc !== null ? (doc as { workflow?: unknown }).workflow : undefined;
  const legacy = typeof wfField === "object" && wfField !== null && "tasks" in wfField && !("specification" in wfField);
  const parsed = legacy ? LegacySchema.safeParse(doc) : CurrentSchema.safeParse(doc);
  if (!parsed.success) throw new ValidationError(source, issuesFromZod(parsed.error));
  const wf = parsed.data.workflow;
  let tasks: { id: string; parents: string[]; runtime: number }[];
  if ("specification" in wf) {
    const runtime = new Map<string, number>();
    for (const t of wf.execution.tasks) runtime.set(t.id ?? t.name ?? "", t.runtimeInSeconds);
    const issues: { field: string; message: string }[] = [];
    tasks = wf.specification.tasks.map((t, i) => {
      const id = t.id ?? t.name;
      const r = runtime.get(id);
      if (r === undefined) issues.push({ field: `workflow.specification.tasks[${i}]`, message: `task '${id}' has no runtimeInSeconds under workflow.execution.tasks: add it` });
      return { id, parents: t.parents, runtime: r ?? 0 };
    });
    if (issues.length > 0) throw new ValidationError(source, issues);
  } else {
    const issues: { field: string; message: string }[] = [];
    tasks = wf.tasks.map((t, i) => {
      const r = t.runtimeInSeconds ?? t.runtime;
      if (r === undefined) issues.push({ field: `workflow.tasks[${i}].runtimeInSeconds`, message: "is missing: give the task's runtime in seconds" });
      return { id: t.id ?? t.name, parents: t.parents, runtime: r ?? 0 };
    });
    if (issues.length > 0) throw new ValidationError(source, issues);
  }
  const stages: StageSpec[] = tasks.map((t) => ({ id: t.id, needs: t.parents, gpus: 1, vramMiB: TASK_VRAM_MIB, durationS: t.runtime, modelLoadS: 0 }));
  const dag = buildDag(stages, "workflow.tasks");
  if (Array.isArray(dag)) throw new ValidationError(source, dag);
  return { name: parsed.data.name, stages, dag, durations: tasks.map((t) => t.runtime) };
}

/** max(critical path, total work / machines). */
export function dagLowerBound(problem: DagProblem, machines: number): number {
  const work = problem.durations.reduce((a, b) => a + b, 0);
  return Math.max(criticalPath(problem.dag, problem.durations), work / machines);
}

/** Spreads of the randomized critical-path priorities the reference search samples, in turn. */
export const REFERENCE_SPREADS = [0.1, 0.2, 0.35, 0.5] as const;

/**
 * The best makespan among `samples` randomized critical-path list schedules (upward rank scaled by
 * a random factor per task), plus the unperturbed one. Independent of the policy under test.
 */
export function bestKnownMakespan(problem: DagProblem, machines: number, samples: number, seed: number): number {
  const random = seededRandom(deriveSeed(seed, `best-known:${problem.name}`));
  const rank = upwardRank(problem.dag, problem.durations);
  let best = listSchedule(problem.dag, problem.durations, rank, machines).makespan;
  for (let k = 0; k < samples; k++) {
    const m = listSchedule(problem.dag, problem.durations, perturbedRank(rank, random, REFERENCE_SPREADS[k % REFERENCE_SPREADS.length]!), machines).makespan;
    if (m < best) best = m;
  }
  return best;
}

export interface WfcommonsOptions {
  readonly gpus?: readonly GpuSpec[];
  readonly runs?: number;
  readonly seed?: number;
  /** Randomized list schedules for best_known_s (0 skips the search). */
  readonly referenceSamples?: number;
}

export function wfcommonsWorkload(problem: DagProblem, label: string, options: WfcommonsOptions = {}): Workload {
  const gpus = options.gpus ?? parsePoolSpec(WFCOMMONS_POOL);
  const runs = options.runs ?? 1;
  const samples = options.referenceSamples ?? 1000;
  const arrivals = Array.from({ length: runs }, (_, i) => ({
    at: 0,
    run: { id: runs === 1 ? problem.name : `${problem.name}#${i + 1}`, tenant: WFCOMMONS_TENANT, priority: "batch", stages: problem.stages, planAhead: true } satisfies RunSpec,
  }));
  const single = runs === 1;
  return {
    name: label,
    gpus,
    tenants: [{ name: WFCOMMONS_TENANT, weight: 1 }],
    arrivals,
    noise: 0,
    settings: { headroomMiB: 0 },
    ...(single ? { lowerBoundS: dagLowerBound(problem, gpus.length) } : {}),
    ...(single && samples > 0 ? { bestKnownS: bestKnownMakespan(problem, gpus.length, samples, options.seed ?? 1) } : {}),
  };
}
