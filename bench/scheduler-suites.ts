/**
 * The suites bench:scheduler runs, as a function: the command line prints what it returns, and the
 * decision golden test recomputes its --no-timing form and compares it with the checked-in file, so
 * the two cannot drift apart.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadWorkflowFile, stagesFor } from "../runtime/graph/index.ts";
import { stageSpecFromGraph } from "../runtime/scheduler/from-graph.ts";
import { summary } from "../runtime/sim/metrics.ts";
import { POLICY_NAMES, createPolicy, type PolicyName } from "../runtime/sim/policies.ts";
import { simulate, type ResultRow } from "../runtime/sim/simulator.ts";
import type { Workload } from "../runtime/sim/workload.ts";
import { comfyuiWorkload, type NamedStages } from "../runtime/sim/workloads/comfyui.ts";
import { scaleWorkload } from "../runtime/sim/workloads/scale.ts";
import { studioMixedWorkload } from "../runtime/sim/workloads/studio-mixed.ts";
import { parseWfFormat, wfcommonsWorkload } from "../runtime/sim/workloads/wfcommons.ts";
import { checkTargets, type TargetCheck } from "./scheduler-targets.ts";

export interface SuiteOptions {
  readonly seed: number;
  /** Time the policy (decisions_per_s); false prints null there, for byte-for-byte comparisons. */
  readonly timed: boolean;
  /** The sample data set's WfCommons and ComfyUI folders, or null where absent (those suites are skipped). */
  readonly wfinstancesDir: string | null;
  readonly comfyuiDir: string | null;
  /** Progress and skip notes (stderr on the command line). */
  readonly note?: (line: string) => void;
}

export interface SuiteSpread {
  readonly count: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly max: number | null;
}

export interface SchedulerBenchReport {
  readonly seed: number;
  readonly results: ResultRow[];
  readonly scale_cold_decisions_per_s: number | null;
  readonly scale_passes_decisions_per_s: number[] | null;
  /** Per suite (wfcommons, comfyui, studio-mixed, scale) and policy: makespan / lower bound over its instances (true median, nearest-rank p90, max). */
  readonly suites: Record<string, Record<string, SuiteSpread>>;
  readonly targets: TargetCheck[];
}

/** The policies every suite runs: gpufabric and each baseline the simulator has. */
const ALL: readonly PolicyName[] = POLICY_NAMES;

const round3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

export function runSchedulerSuites(options: SuiteOptions): SchedulerBenchReport {
  const { seed, timed } = options;
  const note = options.note ?? (() => {});
  const rows: ResultRow[] = [];
  const run = (workload: Workload, policies: readonly PolicyName[]) => {
    for (const name of policies) {
      const policy = createPolicy(name, workload, seed);
      const result = simulate(workload, policy, { seed, ...(timed ? { stopwatch: () => performance.now() } : {}) });
      rows.push(result.row);
      note(`  ${workload.name} / ${name} done`);
    }
  };

  if (options.wfinstancesDir) {
    const dir = options.wfinstancesDir;
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
      const problem = parseWfFormat(JSON.parse(readFileSync(join(dir, file), "utf8")), file);
      run(wfcommonsWorkload(problem, `wfcommons:${file}`, { seed, referenceSamples: 1000 }), ALL);
    }
  }

  if (options.comfyuiDir) {
    const dir = options.comfyuiDir;
    const workflows: NamedStages[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
      try {
        const graph = loadWorkflowFile(join(dir, file));
        workflows.push({ name: graph.name, stages: stagesFor(graph).map(stageSpecFromGraph) });
      } catch (err) {
        note(`note: ${file} skipped: ${(err as Error).message.split("\n")[0]}`);
      }
    }
    run(comfyuiWorkload(workflows, seed), ALL);
  }

  run(studioMixedWorkload(seed), ALL);
  // The agent's scheduler lives as long as the agent: decisions_per_s on `scale` is its steady state, the
  // median of three passes of the same workload in this process after a first, cold pass (JIT warm-up)
  // whose figure is printed beside it as `scale_cold_decisions_per_s`. Every pass makes the same decisions.
  let scaleColdDecisionsPerS: number | null = null;
  const scalePassesDecisionsPerS: number[] = [];
  if (timed) {
    const scalePass = () => {
      const workload = scaleWorkload(seed);
      return simulate(workload, createPolicy("gpufabric", workload, seed), { seed, stopwatch: () => performance.now() }).row;
    };
    scaleColdDecisionsPerS = scalePass().decisions_per_s;
    const passes = [scalePass(), scalePass(), scalePass()];
    scalePassesDecisionsPerS.push(...passes.map((r) => r.decisions_per_s ?? 0));
    rows.push([...passes].sort((x, y) => (x.decisions_per_s ?? 0) - (y.decisions_per_s ?? 0))[1]!);
    note(`  scale / gpufabric done (cold pass ${scaleColdDecisionsPerS}, then ${scalePassesDecisionsPerS.join(", ")} decisions/s)`);
  } else {
    run(scaleWorkload(seed), ["gpufabric"]);
  }

  return {
    seed,
    results: rows,
    scale_cold_decisions_per_s: scaleColdDecisionsPerS,
    scale_passes_decisions_per_s: timed ? scalePassesDecisionsPerS : null,
    suites: suiteSpreads(rows),
    targets: checkTargets(rows, timed),
  };
}

/** makespan / lower bound per suite and policy: a suite is the workload name up to its first ':'. */
export function suiteSpreads(rows: readonly ResultRow[]): Record<string, Record<string, SuiteSpread>> {
  const ratios = new Map<string, Map<string, number[]>>();
  for (const r of rows) {
    if (r.makespan_s === null || !r.lower_bound_s) continue;
    const suite = r.workload.split(":")[0]!;
    const byPolicy = ratios.get(suite) ?? new Map<string, number[]>();
    ratios.set(suite, byPolicy);
    byPolicy.set(r.policy, [...(byPolicy.get(r.policy) ?? []), r.makespan_s / r.lower_bound_s]);
  }
  const out: Record<string, Record<string, SuiteSpread>> = {};
  for (const [suite, byPolicy] of ratios) {
    out[suite] = {};
    for (const [policy, values] of byPolicy) {
      const s = summary(values);
      out[suite]![policy] = { count: s.count, p50: round3(s.p50), p90: round3(s.p90), max: round3(s.max) };
    }
  }
  return out;
}
