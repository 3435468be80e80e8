/**
 * An exact reference for small instances: P | prec | Cmax (see schedule.ts) as a mixed-integer
 * program solved by HiGHS (the `highs` package: the HiGHS branch-and-cut solver compiled to
 * WebAssembly, single-threaded).
 *
 * Formulation (a resource-flow model, Artigues, Michelon & Reusser 2003, for unit demands): a start
 * time S_j per stage, the makespan C, and a binary x_ij per ordered pair "j runs next on the GPU i
 * ran on". Every stage has one predecessor (a stage or the source) and one successor (a stage or the
 * sink) on its GPU, at most `machines` chains leave the source, and x_ij = 1 forces S_j ≥ S_i + d_i.
 * Why this and not a GPU index per stage: the GPUs are identical, so naming them multiplies every
 * solution by machines! symmetric copies that branch-and-bound would have to refute one by one; the
 * chains are anonymous. Why not time-indexed: WfCommons runtimes are real-valued seconds.
 * Tightening: S_j lies in [longest path to j, UB - longest path from j], with UB the best heuristic
 * schedule's makespan; C ≥ max(critical path, work / machines); big-Ms are the smallest valid ones;
 * pairs that cannot follow each other within UB get no variable.
 *
 * Limits: a node limit (deterministic: the same model gives the same search on every machine) and a
 * wall-clock limit as a safety net (not deterministic: where it stops the solve, the figures depend on
 * the machine's speed, and the result says so in `stoppedBy`).
 */
import highsModule from "highs";
import { downwardRank, EPS, refLowerBound, upwardRank, type RefProblem, type RefSchedule } from "./schedule.ts";

export interface MilpOptions {
  /** A feasible schedule whose makespan bounds the search (a heuristic's); required. */
  readonly incumbent: RefSchedule;
  /** Branch-and-bound nodes at most (deterministic limit). */
  readonly nodeLimit?: number;
  /** Wall-clock seconds at most (safety net; not deterministic). */
  readonly timeLimitS?: number;
}

export interface MilpResult {
  /**
   * "optimal": proven; "node-limit" / "time-limit": stopped with `bound` ≤ optimum ≤ `makespan`;
   * "solver-error": the solver ended otherwise (the incumbent and the plain lower bound stand).
   */
  readonly status: "optimal" | "node-limit" | "time-limit" | "solver-error";
  /** The best schedule found (the solver's, or the incumbent where the solver found none better). */
  readonly schedule: RefSchedule;
  readonly makespan: number;
  /** Best proven lower bound on the optimum (equal to makespan, within tolerance, when optimal). */
  readonly bound: number;
  readonly nodes: number;
  readonly variables: number;
  readonly constraints: number;
}

// The package's types describe its CommonJS build (the loader under `.default`); Node's ESM import
// resolves to its ES build, whose default export is the loader itself.
type Loader = typeof highsModule.default;
const highsLoader: Loader = typeof highsModule === "function" ? (highsModule as unknown as Loader) : highsModule.default;
let loaded: ReturnType<Loader> | null = null;
const highs = () => (loaded ??= highsLoader());

/** Ancestor sets as bitsets-by-array: anc[j].has(i) when i must finish before j starts. */
function ancestors(p: RefProblem): Set<number>[] {
  const anc = p.durations.map(() => new Set<number>());
  for (const j of p.dag.order) for (const parent of p.dag.parents[j]!) {
    anc[j]!.add(parent);
    for (const a of anc[parent]!) anc[j]!.add(a);
  }
  return anc;
}

/**
 * Whether every duration is a whole number: then left-shifting any schedule gives whole-number starts,
 * so the optimum is a whole number too, and a bound b proves ceil(b). (Declaring C integer would say
 * the same, but this HiGHS build's presolve then reports some feasible models infeasible; a bound and
 * an absolute gap just under 1 carry the fact without it.)
 */
const wholeSeconds = (p: RefProblem) => p.durations.every(Number.isInteger);

/** The lower bound, rounded up where the optimum is known to be a whole number. */
function makespanFloor(p: RefProblem): number {
  const lower = refLowerBound(p);
  return wholeSeconds(p) ? Math.ceil(lower - EPS) : lower;
}

/** The model as CPLEX LP text, with the number of variables and constraints. */
export function milpModel(p: RefProblem, upper: number): { lp: string; variables: number; constraints: number } {
  const n = p.durations.length;
  const d = p.durations;
  const head = downwardRank(p.dag, d);
  const tail = upwardRank(p.dag, d as number[]);
  const latest = (j: number) => upper - tail[j]!;
  const anc = ancestors(p);
  const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toPrecision(17));
  const rows: string[] = [];
  const binaries: string[] = [];
  const into: string[][] = Array.from({ length: n }, () => []);
  const outOf: string[][] = Array.from({ length: n }, () => []);
  for (let j = 0; j < n; j++) {
    for (const i of p.dag.parents[j]!) rows.push(`prec_${i}_${j}: S${j} - S${i} >= ${num(d[i]!)}`);
    rows.push(`end_${j}: C - S${j} >= ${num(d[j]!)}`);
    into[j]!.push(`xs_${j}`);
    outOf[j]!.push(`xt_${j}`);
    binaries.push(`xs_${j}`, `xt_${j}`);
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j || anc[i]!.has(j)) continue; // j before i: j cannot follow i on a GPU
      if (head[i]! + d[i]! > latest(j) + EPS) continue; // i cannot end before j must start
      const x = `x_${i}_${j}`;
      binaries.push(x);
      into[j]!.push(x);
      outOf[i]!.push(x);
      if (anc[j]!.has(i)) continue; // precedence already orders them
      // x = 1: S_j - S_i ≥ d_i. x = 0: S_j - S_i ≥ d_i - M, with M = d_i + latest(i) - head(j) the smallest that always holds.
      const bigM = d[i]! + latest(i) - head[j]!;
      if (bigM <= 0) continue;
      rows.push(`seq_${i}_${j}: S${j} - S${i} - ${num(bigM)} ${x} >= ${num(d[i]! - bigM)}`);
    }
  }
  for (let j = 0; j < n; j++) {
    rows.push(`in_${j}: ${into[j]!.join(" + ")} = 1`);
    rows.push(`out_${j}: ${outOf[j]!.join(" + ")} = 1`);
  }
  rows.push(`gpus: ${Array.from({ length: n }, (_, j) => `xs_${j}`).join(" + ")} <= ${p.machines}`);
  const bounds = [`${num(makespanFloor(p))} <= C <= ${num(upper)}`, ...Array.from({ length: n }, (_, j) => `${num(head[j]!)} <= S${j} <= ${num(Math.max(head[j]!, latest(j)))}`)];
  const lp = `Minimize\n obj: C\nSubject To\n ${rows.join("\n ")}\nBounds\n ${bounds.join("\n ")}\nBinary\n ${binaries.join("\n ")}\nEnd\n`;
  return { lp, variables: n + 1 + binaries.length, constraints: rows.length };
}

/**
 * A valid schedule from the solver's start times: stages taken by start, each on a GPU free by then
 * (one exists: at most `machines` stages overlap), then every start recomputed exactly as the later
 * of its parents' and its GPU predecessor's finish, so solver tolerances never leak into the figures.
 */
export function scheduleFromStarts(p: RefProblem, starts: readonly number[]): RefSchedule {
  const n = p.durations.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => starts[a]! - starts[b]! || p.dag.order.indexOf(a) - p.dag.order.indexOf(b));
  const lastOn = new Array<number>(p.machines).fill(-Infinity);
  const lastTask = new Array<number>(p.machines).fill(-1);
  const start = new Array<number>(n).fill(0);
  const finish = new Array<number>(n).fill(0);
  const gpu = new Array<number>(n).fill(0);
  const tol = EPS * Math.max(1, ...starts.map(Math.abs));
  for (const i of order) {
    let g = 0;
    if (p.durations[i]! > 0) {
      // The free GPU that has been busiest most recently (best fit), else the one free first.
      let best = -1;
      for (let k = 0; k < p.machines; k++) if (lastOn[k]! <= starts[i]! + tol && (best < 0 || lastOn[k]! > lastOn[best]!)) best = k;
      if (best < 0) for (let k = 0; k < p.machines; k++) if (best < 0 || lastOn[k]! < lastOn[best]!) best = k;
      g = best;
    }
    let ready = g >= 0 && p.durations[i]! > 0 && lastTask[g]! >= 0 ? finish[lastTask[g]!]! : 0;
    for (const parent of p.dag.parents[i]!) ready = Math.max(ready, finish[parent]!);
    start[i] = ready;
    finish[i] = ready + p.durations[i]!;
    gpu[i] = g;
    if (p.durations[i]! > 0) {
      lastOn[g] = starts[i]! + p.durations[i]!;
      lastTask[g] = i;
    }
  }
  return { start, finish, gpu, makespan: finish.reduce((a, b) => Math.max(a, b), 0) };
}

export async function solveMilp(p: RefProblem, options: MilpOptions): Promise<MilpResult> {
  const h = await highs();
  const upper = options.incumbent.makespan;
  const { lp, variables, constraints } = milpModel(p, upper);
  const model = h.createModel({ format: "lp", data: lp });
  try {
    model.options.set({
      output_flag: false,
      // Proven optimal means a zero gap, not HiGHS's default 0.01 %.
      mip_rel_gap: 0,
      mip_abs_gap: wholeSeconds(p) ? 1 - 1e-6 : 1e-9,
      random_seed: 0,
      mip_max_nodes: options.nodeLimit ?? 20_000,
      time_limit: options.timeLimitS ?? 60,
    });
    model.run();
    const code = model.getModelStatus();
    const c = h.constants.modelStatus;
    const nodes = Number(model.info.get("mip_node_count"));
    let bound = Number(model.info.get("mip_dual_bound"));
    // A model with a known feasible schedule cannot be infeasible: any other ending is the solver's failure.
    const status: MilpResult["status"] = code === c.optimal ? "optimal" : code === c.timeLimit ? "time-limit" : code === c.solutionLimit || code === c.iterationLimit ? "node-limit" : "solver-error";
    if (status === "solver-error") bound = -Infinity;
    let schedule = options.incumbent;
    const primal = Number(model.info.get("primal_solution_status"));
    if (primal === 2) {
      const col = model.getSolution().colValue;
      const found = scheduleFromStarts(p, Array.from({ length: p.durations.length }, (_, j) => col[model.getColByName(`S${j}`)]!));
      if (found.makespan < schedule.makespan) schedule = found;
    }
    const lower = makespanFloor(p);
    if (!Number.isFinite(bound) || bound < lower) bound = lower;
    if (wholeSeconds(p)) bound = Math.ceil(bound - EPS);
    if (status === "optimal") bound = Math.min(bound, schedule.makespan);
    return { status, schedule, makespan: schedule.makespan, bound, nodes, variables, constraints };
  } finally {
    model.dispose();
  }
}
