/**
 * Workloads from files and names, for the CLI and the benchmark: a suite name, a WfCommons
 * (WfFormat) instance, a native workflow or ComfyUI prompt submitted N times, or a workload file
 * mixing several workflows. Every bad field is reported with its path.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ValidationError, issuesFromZod } from "../config/errors.ts";
import { parseWorkflow, stagesFor } from "../graph/index.ts";
import { graphPriority } from "../scheduler/from-graph.ts";
import { stageSpecFromGraph } from "../scheduler/from-graph.ts";
import { parsePoolSpec, type GpuSpec } from "../scheduler/inventory.ts";
import type { RunSpec, StageSpec } from "../scheduler/types.ts";
import type { Arrival, Workload } from "./workload.ts";
import { isWfFormat, parseWfFormat, wfcommonsWorkload } from "./workloads/wfcommons.ts";
import { STUDIO_POOL, studioMixedWorkload } from "./workloads/studio-mixed.ts";
import { scaleWorkload } from "./workloads/scale.ts";

export const SUITE_WORKLOADS = ["studio-mixed", "scale"] as const;

export interface LoadOptions {
  readonly seed: number;
  /** Overrides the workload's own pool. */
  readonly gpus?: readonly GpuSpec[];
  /** Runs of a single workflow file. */
  readonly runs?: number;
}

function readDocument(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ValidationError(`workload '${path}'`, [{ field: "workload", message: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give a suite name (${SUITE_WORKLOADS.join(", ")}) or a file` }]);
  }
  try {
    return path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ValidationError(`workload '${path}'`, [{ field: "(root)", message: `not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${(err as Error).message}` }]);
  }
}

/** The stages of a native workflow or ComfyUI prompt document, adapted for the scheduler. */
export function stagesOfWorkflow(doc: unknown, source: string): { name: string; stages: StageSpec[]; priority: RunSpec["priority"] } {
  const graph = parseWorkflow(doc, { source, name: basename(source).replace(/\.[^.]+$/, "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "") || "workflow" });
  const stages = stagesFor(graph);
  return { name: graph.name, stages: stages.map(stageSpecFromGraph), priority: graphPriority(graph, stages) };
}

const SubmissionSchema = z
  .object({
    workflow: z.string().min(1, "name the workflow file, relative to the workload file"),
    tenant: z.string().min(1),
    priority: z.enum(["interactive", "batch"]).optional(),
    runs: z.number().int().positive().max(100_000),
    startS: z.number().nonnegative().default(0),
    everyS: z.number().nonnegative().default(0),
  })
  .strict();

const WorkloadFileSchema = z
  .object({
    name: z.string().min(1).default("workload"),
    pool: z.string().min(1).optional(),
    tenants: z.array(z.object({ name: z.string().min(1), weight: z.number().positive() }).strict()).optional(),
    submissions: z.array(SubmissionSchema).min(1, "list at least one submission"),
  })
  .strict();

function workloadFromFile(doc: unknown, path: string, options: LoadOptions): Workload {
  const parsed = WorkloadFileSchema.safeParse(doc);
  if (!parsed.success) throw new ValidationError(`workload file '${path}'`, issuesFromZod(parsed.error));
  const spec = parsed.data;
  const gpus = options.gpus ?? parsePoolSpec(spec.pool ?? STUDIO_POOL, "pool");
  if (spec.tenants) {
    const declared = new Set(spec.tenants.map((t) => t.name));
    const issues = spec.submissions.flatMap((s, i) => (declared.has(s.tenant) ? [] : [{ field: `submissions[${i}].tenant`, message: `unknown tenant '${s.tenant}': declare it under tenants` }]));
    if (issues.length > 0) throw new ValidationError(`workload file '${path}'`, issues);
  }
  const arrivals: Arrival[] = [];
  const tenantNames = new Set<string>();
  spec.submissions.forEach((sub, i) => {
    const file = resolve(dirname(path), sub.workflow);
    let wf: ReturnType<typeof stagesOfWorkflow>;
    try {
      wf = stagesOfWorkflow(readDocument(file), file);
    } catch (err) {
      if (err instanceof ValidationError) throw new ValidationError(`workload file '${path}'`, err.issues.map((x) => ({ field: `submissions[${i}].workflow → ${x.field}`, message: x.message })));
      throw err;
    }
    tenantNames.add(sub.tenant);
    for (let k = 0; k < sub.runs; k++) {
      arrivals.push({ at: sub.startS + k * sub.everyS, run: { id: `${sub.tenant}/${wf.name}-${i}-${k}`, tenant: sub.tenant, priority: sub.priority ?? wf.priority, stages: wf.stages } });
    }
  });
  arrivals.sort((a, b) => a.at - b.at || (a.run.id < b.run.id ? -1 : 1));
  return {
    name: spec.name,
    gpus,
    tenants: spec.tenants ?? [...tenantNames].sort().map((name) => ({ name, weight: 1 })),
    arrivals,
    noise: 0,
    settings: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 600 },
  };
}

/** Resolves `--workload`: a suite name or a file (WfFormat instance, workload file, native workflow or ComfyUI prompt). */
export function loadWorkload(spec: string, options: LoadOptions): Workload {
  if (spec === "studio-mixed") {
    const w = studioMixedWorkload(options.seed);
    return options.gpus ? { ...w, gpus: options.gpus } : w;
  }
  if (spec === "scale") {
    const w = scaleWorkload(options.seed);
    return options.gpus ? { ...w, gpus: options.gpus } : w;
  }
  const doc = readDocument(spec);
  const label = basename(spec);
  if (isWfFormat(doc)) {
    return wfcommonsWorkload(parseWfFormat(doc, spec), `wfcommons:${label}`, { seed: options.seed, runs: options.runs ?? 1, ...(options.gpus ? { gpus: options.gpus } : {}) });
  }
  if (typeof doc === "object" && doc !== null && "submissions" in doc) return workloadFromFile(doc, spec, options);
  const wf = stagesOfWorkflow(doc, spec);
  const runs = options.runs ?? 1;
  const arrivals: Arrival[] = Array.from({ length: runs }, (_, k) => ({ at: 0, run: { id: `${wf.name}-${k}`, tenant: "default", priority: wf.priority, stages: wf.stages } }));
  return {
    name: label,
    gpus: options.gpus ?? parsePoolSpec(STUDIO_POOL),
    tenants: [{ name: "default", weight: 1 }],
    arrivals,
    noise: 0,
    settings: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 600 },
  };
}
