/**
 * The scheduler's cost in figures that do not depend on the machine's speed.
 *
 * 1. `relativeDecisionRate`: decisions/s on `scale` divided by the rate of a frozen reference loop
 *    (bench/reference-loop.ts) timed in the same process right before and after each pass; the median
 *    over passes. bench:scheduler prints it beside decisions/s.
 * 2. This script (npm run bench:scheduler-cost [-- --json] [--decisions K] [--runs R]): instructions per
 *    decision under `valgrind --tool=callgrind`. It counts the instructions of the fixed workload
 *    (bench/scheduler-cost-run.ts: the scale workload's first R runs, stopped after K placements) and of
 *    the same workload stopped before its first placement; the difference over the difference in
 *    placements is the cost of a decision (simulator bookkeeping included), free of Node's start-up.
 *    Both are measured twice, and the two figures must agree within 1 %.
 *
 * Why a separate script and not `bench:scheduler -- --callgrind`: four runs of Node under callgrind take
 * minutes, and they need a compiled copy of the workload (below); bench:scheduler stays quick.
 * What makes the count repeatable (measured; see FLAGS_NOTE and the report's `flags_note`): Node runs the workload
 * compiled to plain JavaScript, not through the TypeScript loader (whose hooks run on another thread
 * and are answered through a shared-memory wait, which costs a different number of instructions each
 * run), and with `--jitless` (no optimizing compiler whose background compile jobs finish at different
 * points of the run) and `--predictable --hash-seed=1 --random-seed=1` (no background GC or compile
 * tasks, fixed hash and random seeds).
 */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "../runtime/sim/metrics.ts";
import { createPolicy } from "../runtime/sim/policies.ts";
import { simulate } from "../runtime/sim/simulator.ts";
import { scaleWorkload } from "../runtime/sim/workloads/scale.ts";
import { REFERENCE_LOOP_OPS, referenceLoopOpsPerS } from "./reference-loop.ts";

export interface MachineInfo {
  readonly cpu_model: string;
  readonly cores: number;
  readonly node: string;
  readonly load_1m: number;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return { cpu_model: list[0]?.model.trim() ?? "unknown", cores: list.length, node: process.version, load_1m: Math.round(loadavg()[0]! * 100) / 100 };
}

export interface RelativeRate {
  /** Median over passes of (decisions/s) / (reference heap ops/s) × 1,000: decisions per 1,000 reference-loop heap operations. */
  readonly decisions_per_1k_reference_ops: number;
  readonly passes: { decisions_per_s: number; reference_ops_per_s: number; ratio: number }[];
  readonly reference_loop: string;
  readonly machine: MachineInfo;
}

/** The reference loop's rate: the median of five calls (one call is ~20 ms). */
function loopRate(): number {
  return median(Array.from({ length: 5 }, referenceLoopOpsPerS))!;
}

export function relativeDecisionRate(seed: number, passes = 3): RelativeRate {
  loopRate(); // warm the loop's code up
  const rows: RelativeRate["passes"] = [];
  for (let k = 0; k < passes; k++) {
    const before = loopRate();
    const workload = scaleWorkload(seed);
    const row = simulate(workload, createPolicy("gpufabric", workload, seed), { seed, stopwatch: () => performance.now() }).row;
    const after = loopRate();
    // The loop on both sides of the pass: a machine that slows down or speeds up mid-pass moves both.
    const reference = (before + after) / 2;
    const rate = row.decisions_per_s ?? 0;
    rows.push({ decisions_per_s: rate, reference_ops_per_s: Math.round(reference), ratio: Math.round((rate / reference) * 1000 * 1000) / 1000 });
  }
  return {
    decisions_per_1k_reference_ops: median(rows.map((r) => r.ratio))!,
    passes: rows,
    reference_loop: `binary min-heap of numbers, ${REFERENCE_LOOP_OPS} push/pop operations per call (bench/reference-loop.ts)`,
    machine: machineInfo(),
  };
}

const run = promisify(execFile);

/**
 * What was measured when the flags were chosen (the same K = 2,000 workload, two runs each, total
 * instructions): through the TypeScript loader with --jitless, 0.7 % apart (0.8 % with --predictable
 * too: the loader thread is the noise); compiled, JIT on, 0.9 %; compiled, --jitless alone, 0.8 %;
 * compiled, --jitless --predictable --hash-seed=1 --random-seed=1, 0.1 % (and 0.02 % on the K = 0 run).
 */
const FLAGS_NOTE = "compiled to plain JavaScript (the TypeScript loader's thread made runs 0.7 % apart); --jitless (with the JIT, 0.9 % apart); --predictable --hash-seed=1 --random-seed=1 (without them, 0.8 % apart; with them 0.1 %)";

const NODE_FLAGS = ["--jitless", "--predictable", "--hash-seed=1", "--random-seed=1"];

/** Compiles the cost workload and what it imports to plain JavaScript (TypeScript's own compiler) under node_modules/.cache. */
function compileRunner(root: string): string {
  const dir = join(root, "node_modules", ".cache", "gpufabric-scheduler-cost");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const config = {
    extends: join(root, "tsconfig.json"),
    compilerOptions: { noEmit: false, outDir: join(dir, "out"), rootDir: root, declaration: false, rewriteRelativeImportExtensions: true, incremental: false, sourceMap: false },
    files: [join(root, "bench", "scheduler-cost-run.ts")],
    include: [],
  };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(config, null, 2));
  const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
  const res = spawnSync(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { cwd: root, encoding: "utf8" });
  const out = join(dir, "out", "bench", "scheduler-cost-run.js");
  // Type errors elsewhere in the tree still emit JavaScript; only a missing output is fatal.
  if (!existsSync(out)) throw new Error(`bench:scheduler-cost: compiling the workload failed: ${(res.stdout + res.stderr).slice(0, 2000)}`);
  writeFileSync(join(dir, "out", "package.json"), `${JSON.stringify({ type: "module" })}\n`);
  return out;
}

interface CallgrindRun {
  readonly decisions: number;
  readonly instructions: number;
}

async function callgrind(script: string, decisions: number, runs: number, tag: string): Promise<CallgrindRun> {
  const outFile = join(dirname(script), `callgrind.${tag}.out`);
  const args = ["--tool=callgrind", `--callgrind-out-file=${outFile}`, process.execPath, ...NODE_FLAGS, script, "--decisions", String(decisions), "--runs", String(runs)];
  const { stdout } = await run("valgrind", args).catch((err: Error & { stderr?: string }) => {
    throw new Error(`bench:scheduler-cost: valgrind failed: ${err.message} ${(err.stderr ?? "").slice(-2000)}`);
  });
  const summary = /^summary:\s+(\d+)/m.exec(readFileSync(outFile, "utf8"));
  if (!summary) throw new Error(`bench:scheduler-cost: no 'summary:' line in ${outFile}`);
  return { decisions: JSON.parse(stdout.trim().split("\n").pop()!).decisions, instructions: Number(summary[1]) };
}

function wholeOption(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`bench:scheduler-cost: ${name} must be a positive whole number\n`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes("--json");
  const decisions = wholeOption(args, "--decisions", 2000);
  const runs = wholeOption(args, "--runs", 1000);
  if (spawnSync("valgrind", ["--version"]).status !== 0) {
    process.stderr.write("bench:scheduler-cost: valgrind is not installed (apt-get install valgrind); nothing measured\n");
    process.exit(3);
  }
  const root = fileURLToPath(new URL("../", import.meta.url));
  const script = compileRunner(root);
  const started = performance.now();
  // Two repetitions of (stopped before the first placement, stopped after K), the pair side by side:
  // instruction counts do not depend on how busy the machine is, only the wall time does.
  const measure = async (rep: number) => {
    const [base, full] = await Promise.all([callgrind(script, 0, runs, `${rep}.base`), callgrind(script, decisions, runs, `${rep}.k`)]);
    return { base, full, per_decision: Math.round((full.instructions - base.instructions) / (full.decisions - base.decisions)) };
  };
  const reps = [await measure(1), await measure(2)];
  const [a, b] = reps.map((r) => r.per_decision) as [number, number];
  const spreadPct = (Math.abs(a - b) / Math.min(a, b)) * 100;
  const report = {
    instructions_per_decision: Math.round((a + b) / 2),
    repetitions: reps,
    agree_within_1pct: spreadPct <= 1,
    spread_pct: Math.round(spreadPct * 1000) / 1000,
    workload: `scale (seed 1), first ${runs} runs, gpufabric's scheduler in the simulator, stopped after ${decisions} placements, minus the same stopped before its first`,
    node_flags: NODE_FLAGS,
    flags_note: FLAGS_NOTE,
    valgrind: spawnSync("valgrind", ["--version"], { encoding: "utf8" }).stdout.trim(),
    machine: machineInfo(),
    wall_s: Math.round((performance.now() - started) / 100) / 10,
  };
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    process.stdout.write(`instructions per decision: ${report.instructions_per_decision} (repetitions ${a}, ${b}; spread ${report.spread_pct} %${report.agree_within_1pct ? "" : ": MORE THAN 1 %"})\n`);
    process.stdout.write(`  ${report.workload}\n  node ${NODE_FLAGS.join(" ")} under ${report.valgrind}; ${report.machine.cpu_model}, ${report.machine.cores} cores, Node ${report.machine.node}; ${report.wall_s} s\n`);
  }
  if (!report.agree_within_1pct) process.exitCode = 1;
}

// Measures only when run as the script: bench:scheduler imports relativeDecisionRate from here.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
