/**
 * The independent reference of bench:scheduler: gpufabric's makespan on workflow DAGs judged against
 * schedules it did not search for. An exact MILP (runtime/sim/reference/milp.ts, HiGHS) on the
 * instances small enough to solve; PEFT, CPOP, min-min and max-min on every instance; the lower bound
 * (max of critical path and work / GPUs) beside them.
 *
 * Instances: seeded random DAGs of 8–14 stages on 2–3 GPUs (always there, solved to proven optimality
 * in well under a second each), and the WfCommons instances of the sample data set (16 GPUs, as the
 * wfcommons suite runs them), the MILP only on those of at most `maxMilpStages` stages (60).
 *
 * Determinism: the MILP stops at a node limit (the same search on every machine) or, as a safety net,
 * at a wall-clock limit (not the same on every machine). With timed = false (--no-timing), an instance
 * the clock stopped prints status "time-limit" and null figures, so the output stays byte-for-byte the
 * same; with timing on, its best schedule and proven bound so far are printed.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parsePoolSpec } from "../runtime/scheduler/inventory.ts";
import { summary } from "../runtime/sim/metrics.ts";
import { createPolicy } from "../runtime/sim/policies.ts";
import { cpopSchedule } from "../runtime/sim/reference/cpop.ts";
import { solveMilp, type MilpResult } from "../runtime/sim/reference/milp.ts";
import { maxMinSchedule, minMinSchedule } from "../runtime/sim/reference/minmin.ts";
import { peftSchedule } from "../runtime/sim/reference/peft.ts";
import { checkSchedule, randomDagProblem, refLowerBound, type RefProblem, type RefSchedule } from "../runtime/sim/reference/schedule.ts";
import { simulate } from "../runtime/sim/simulator.ts";
import { WFCOMMONS_POOL, parseWfFormat, wfcommonsWorkload, type DagProblem } from "../runtime/sim/workloads/wfcommons.ts";
import type { SuiteSpread } from "./scheduler-suites.ts";

export interface ReferenceOptions {
  readonly seed: number;
  readonly timed: boolean;
  readonly wfinstancesDir: string | null;
  /** WfCommons instances with more stages get heuristics only. */
  readonly maxMilpStages?: number;
  readonly randomInstances?: number;
  /** Branch-and-bound nodes per WfCommons instance (300); the random DAGs get RANDOM_NODE_LIMIT. */
  readonly nodeLimit?: number;
  readonly timeLimitS?: number;
  readonly note?: (line: string) => void;
}

export const HEURISTICS = { peft: peftSchedule, cpop: cpopSchedule, min_min: minMinSchedule, max_min: maxMinSchedule } as const;
type HeuristicName = keyof typeof HEURISTICS;

export interface ReferenceRow {
  readonly instance: string;
  readonly source: "random" | "wfcommons";
  readonly stages: number;
  readonly gpus: number;
  readonly lower_bound_s: number;
  /** gpufabric's makespan in the simulator (its scheduler with planning ahead). */
  readonly gpufabric_s: number;
  /** null where the instance has too many stages for the MILP. */
  readonly milp: {
    readonly status: MilpResult["status"];
    /** The proven optimum (status "optimal"), else null. */
    readonly optimal_s: number | null;
    /** The best proven lower bound on the optimum; null where the clock stopped the solve under --no-timing. */
    readonly bound_s: number | null;
    /** The best schedule's makespan; null as bound_s. */
    readonly best_s: number | null;
    readonly nodes: number | null;
  } | null;
  readonly heuristics_s: Record<HeuristicName, number>;
  /** gpufabric's makespan over each reference (below 1: gpufabric is shorter). */
  readonly ratio: Record<string, number | null>;
}

export interface ReferenceReport {
  readonly method: string;
  readonly max_milp_stages: number;
  readonly node_limit: number;
  readonly time_limit_s: number;
  readonly instances: ReferenceRow[];
  /** Per source (random, wfcommons, all) and ratio column: count, true median, nearest-rank p90 and max over the instances where it is defined. */
  readonly summary: Record<string, Record<string, SuiteSpread>>;
}

const METHOD = "gpufabric makespan / reference per instance: vs_optimal where the MILP proved the optimum, vs_bound (its best proven lower bound) where a limit stopped it, vs_lower_bound = max(critical path, work / GPUs), and vs each published heuristic (PEFT, CPOP, min-min, max-min; insertion-based where the paper is). Every reference schedule passes the shared checker.";

/** Branch-and-bound nodes allowed on the random DAGs (the hardest of the default twelve needs a few hundred). */
export const RANDOM_NODE_LIMIT = 50_000;

export const RATIO_COLUMNS = ["vs_optimal", "vs_bound", "vs_lower_bound", "vs_peft", "vs_cpop", "vs_min_min", "vs_max_min"] as const;

const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
const r3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000);

/** gpufabric's simulated makespan on the DAG alone on `gpus` identical GPUs, as the wfcommons suite runs it. */
function gpufabricMakespan(problem: DagProblem, gpus: number, seed: number): number {
  const workload = wfcommonsWorkload(problem, `reference:${problem.name}`, { gpus: parsePoolSpec(`${gpus}xH100-80`), referenceSamples: 0, seed });
  const row = simulate(workload, createPolicy("gpufabric", workload, seed), { seed }).row;
  if (row.makespan_s === null) throw new Error(`reference: gpufabric did not finish ${problem.name}`);
  return row.makespan_s;
}

function valid(p: RefProblem, name: string, s: RefSchedule): RefSchedule {
  const issues = checkSchedule(p, s);
  if (issues.length > 0) throw new Error(`reference: ${name} on ${p.name} is not a valid schedule: ${issues.slice(0, 3).join("; ")}`);
  return s;
}

async function referenceRow(problem: DagProblem, source: ReferenceRow["source"], gpus: number, withMilp: boolean, options: Required<Pick<ReferenceOptions, "seed" | "timed" | "nodeLimit" | "timeLimitS">>): Promise<ReferenceRow> {
  const p: RefProblem = { name: problem.name, dag: problem.dag, durations: problem.durations, machines: gpus };
  const schedules = Object.fromEntries(Object.entries(HEURISTICS).map(([name, fn]) => [name, valid(p, name, fn(p))])) as Record<HeuristicName, RefSchedule>;
  const heuristics_s = Object.fromEntries(Object.entries(schedules).map(([name, s]) => [name, r4(s.makespan)])) as Record<HeuristicName, number>;
  const gpufabric = gpufabricMakespan(problem, gpus, options.seed);
  const lower = refLowerBound(p);
  let milp: ReferenceRow["milp"] = null;
  if (withMilp) {
    const incumbent = Object.values(schedules).reduce((a, b) => (b.makespan < a.makespan ? b : a));
    const res = await solveMilp(p, { incumbent, nodeLimit: options.nodeLimit, timeLimitS: options.timeLimitS });
    valid(p, "MILP", res.schedule);
    if (gpufabric < res.bound - 1e-6) throw new Error(`reference: gpufabric's ${gpufabric} s on ${p.name} is below the MILP's proven bound ${res.bound} s: one of them is wrong`);
    const hide = res.status === "time-limit" && !options.timed;
    milp = {
      status: res.status,
      optimal_s: res.status === "optimal" ? r4(res.makespan) : null,
      bound_s: hide ? null : r4(res.bound),
      best_s: hide ? null : r4(res.makespan),
      nodes: hide ? null : res.nodes,
    };
  }
  const ratio: Record<string, number | null> = {
    vs_optimal: milp?.optimal_s ? r4(gpufabric / milp.optimal_s) : null,
    vs_bound: milp && milp.status !== "optimal" && milp.bound_s ? r4(gpufabric / milp.bound_s) : null,
    vs_lower_bound: lower > 0 ? r4(gpufabric / lower) : null,
  };
  for (const [name, m] of Object.entries(heuristics_s)) ratio[`vs_${name}`] = m > 0 ? r4(gpufabric / m) : null;
  return { instance: problem.name, source, stages: p.durations.length, gpus, lower_bound_s: r4(lower), gpufabric_s: r4(gpufabric), milp, heuristics_s, ratio };
}

/** The seeded random instances: sizes 8..14 and 2..3 GPUs, cycling, so every size appears. */
export function randomReferenceProblems(seed: number, count: number): { problem: DagProblem; gpus: number }[] {
  return Array.from({ length: count }, (_, k) => {
    const stages = 8 + (k % 7);
    const gpus = 2 + (k % 2);
    const { problem, stages: specs } = randomDagProblem(seed * 1000 + k, stages, gpus);
    return { problem: { name: problem.name, stages: specs, dag: problem.dag, durations: problem.durations }, gpus };
  });
}

export async function runReference(options: ReferenceOptions): Promise<ReferenceReport> {
  // 60 stages takes in six of the ten sample instances; past that the model has thousands of binaries.
  const maxMilpStages = options.maxMilpStages ?? 60;
  // The node limit, not the clock, is meant to stop a solve (deterministic figures); the clock is a safety net.
  const settings = { seed: options.seed, timed: options.timed, nodeLimit: options.nodeLimit ?? 300, timeLimitS: options.timeLimitS ?? 60 };
  // The random DAGs are there to be solved to proven optimality: a limit they never reach.
  const randomSettings = { ...settings, nodeLimit: Math.max(settings.nodeLimit, RANDOM_NODE_LIMIT) };
  const note = options.note ?? (() => {});
  const rows: ReferenceRow[] = [];
  for (const { problem, gpus } of randomReferenceProblems(options.seed, options.randomInstances ?? 12)) {
    rows.push(await referenceRow(problem, "random", gpus, true, randomSettings));
  }
  note(`  reference / ${rows.length} random DAGs done`);
  if (options.wfinstancesDir) {
    const gpus = parsePoolSpec(WFCOMMONS_POOL).length;
    for (const file of readdirSync(options.wfinstancesDir).filter((f) => f.endsWith(".json")).sort()) {
      const problem = parseWfFormat(JSON.parse(readFileSync(join(options.wfinstancesDir, file), "utf8")), file);
      rows.push(await referenceRow({ ...problem, name: `wfcommons:${file}` }, "wfcommons", gpus, problem.stages.length <= maxMilpStages, settings));
      note(`  reference / ${file} done`);
    }
  }
  // Per source as well as overall: 2–3 GPUs on small random DAGs and 16 on WfCommons are different questions.
  const spreads: ReferenceReport["summary"] = {};
  for (const source of ["random", "wfcommons", "all"] as const) {
    const of = rows.filter((r) => source === "all" || r.source === source);
    if (of.length > 0) spreads[source] = ratioSpread(of);
  }
  return { method: METHOD, max_milp_stages: maxMilpStages, node_limit: settings.nodeLimit, time_limit_s: settings.timeLimitS, instances: rows, summary: spreads };
}

/** Count, true median, nearest-rank p90 and max of each ratio column over the rows where it is defined. */
function ratioSpread(rows: readonly ReferenceRow[]): Record<string, SuiteSpread> {
  const spread: Record<string, SuiteSpread> = {};
  for (const c of RATIO_COLUMNS) {
    const s = summary(rows.map((r) => r.ratio[c]).filter((v): v is number => v !== null && v !== undefined));
    spread[c] = { count: s.count, p50: r3(s.p50), p90: r3(s.p90), max: r3(s.max) };
  }
  return spread;
}

/** The text block bench:scheduler prints. */
export function formatReference(report: ReferenceReport): string {
  const cols = RATIO_COLUMNS;
  const out: string[] = [`Independent reference (gpufabric makespan / reference; MILP on ≤ ${report.max_milp_stages} stages, node limit ${report.node_limit}, ${report.time_limit_s} s safety limit):`];
  const width = Math.max(...report.instances.map((r) => r.instance.length));
  out.push(`  ${"instance".padEnd(width)}  stages gpus  milp        ${cols.map((c) => c.replace("vs_", "").padStart(13)).join("")}`);
  for (const r of report.instances) {
    const cells = cols.map((c) => (r.ratio[c] === null ? "-" : r.ratio[c]!.toFixed(3)).padStart(13)).join("");
    out.push(`  ${r.instance.padEnd(width)}  ${String(r.stages).padStart(6)} ${String(r.gpus).padStart(4)}  ${(r.milp?.status ?? "not run").padEnd(10)}  ${cells}`);
  }
  for (const [source, spread] of Object.entries(report.summary)) {
    for (const stat of ["p50", "p90", "max"] as const) {
      const cells = cols.map((c) => {
        const v = spread[c]?.[stat] ?? null;
        return (v === null ? "-" : v.toFixed(3)).padStart(13);
      });
      out.push(`  ${`${source} ${stat}`.padEnd(width)}                          ${cells.join("")}`);
    }
  }
  return `${out.join("\n")}\n`;
}
