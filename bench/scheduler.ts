/**
 * Scheduler benchmark: gpufabric against every baseline on the suite workloads.
 * Usage: npm run bench:scheduler [-- --json] [--seed N] [--no-timing]
 *
 * Same seed, same output: every figure comes from the simulator's clock except decisions_per_s
 * (wall time spent inside the policy); --no-timing prints it as null for byte-for-byte comparisons
 * (test/scheduler/golden/ holds that output, and a test recomputes it).
 * On `scale`, decisions_per_s is the steady state of a long-lived scheduler: the median of three passes
 * after a first, cold pass in this process (printed as scale_cold_decisions_per_s).
 * Each target is judged against every baseline (`met_vs`), and the baselines that do better than
 * gpufabric on a target's figure are named (`beaten_by`).
 * The `reference` section (bench/scheduler-reference.ts) judges gpufabric's makespan on workflow DAGs
 * against an exact MILP where it is small enough and against PEFT, CPOP, min-min and max-min.
 * The `elastic` section (bench/scheduler-elastic.ts) runs an elastic pool against fixed pools sized for the
 * peak and for the average on the bursty studio workload.
 * The WfCommons and ComfyUI workloads read the sample data set beside the checkout and are skipped,
 * with a note on stderr, when it is absent.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ResultRow } from "../runtime/sim/simulator.ts";
import { machineInfo, relativeDecisionRate } from "./scheduler-cost.ts";
import { formatElastic, runElasticComparison } from "./scheduler-elastic.ts";
import { formatReference, runReference } from "./scheduler-reference.ts";
import { runSchedulerSuites } from "./scheduler-suites.ts";

const args = process.argv.slice(2);
const json = args.includes("--json");
const timed = !args.includes("--no-timing");
const seedArg = args.indexOf("--seed");
const seed = seedArg >= 0 ? Number(args[seedArg + 1]) : 1;
if (!Number.isInteger(seed) || seed < 0) {
  process.stderr.write("bench:scheduler: --seed must be a non-negative integer\n");
  process.exit(2);
}

function dataDir(sub: string): string | null {
  const dir = fileURLToPath(new URL(`../../shared/data/${sub}`, import.meta.url));
  if (existsSync(dir)) return dir;
  process.stderr.write(`note: ../shared/data/${sub} is absent; its workloads are skipped\n`);
  return null;
}

const wfinstancesDir = dataDir("wfinstances");
const report = runSchedulerSuites({
  seed,
  timed,
  wfinstancesDir,
  comfyuiDir: dataDir("comfyui"),
  note: (line) => {
    if (!json || line.startsWith("note:")) process.stderr.write(`${line}\n`);
  },
});

// The independent reference (exact MILP on small instances, published heuristics on all): its own
// module, so the golden test pins its --no-timing form separately from the suites'.
const reference = await runReference({
  seed,
  timed,
  wfinstancesDir,
  note: (line) => {
    if (!json) process.stderr.write(`${line}\n`);
  },
});

// Elastic pools on the bursty studio workload (bench/scheduler-elastic.ts): elastic against fixed pools sized
// for the peak and the average, several seeded days; simulator clock only, so --no-timing leaves it as is.
const elastic = runElasticComparison({ seed });

// The scheduler's cost beside the machine it ran on: decisions/s is the machine's figure; divided by a
// frozen reference loop timed around each pass in this process it says little about the machine.
// Instructions per decision (callgrind) come from `npm run bench:scheduler-cost`, which takes minutes.
const scaleRow = report.results.find((r) => r.workload === "scale" && r.policy === "gpufabric");
const cost = {
  // Null under --no-timing: the output then says nothing that depends on the machine.
  machine: timed ? machineInfo() : null,
  scale_decisions_per_s: timed ? (scaleRow?.decisions_per_s ?? null) : null,
  relative: timed ? relativeDecisionRate(seed) : null,
  instructions_per_decision: "npm run bench:scheduler-cost -- --json (valgrind --tool=callgrind)",
};

if (json) {
  process.stdout.write(`${JSON.stringify({ ...report, reference, elastic, cost }, null, 2)}\n`);
} else {
  const cols = ["workload", "policy", "makespan_s", "lower_bound_s", "best_known_s", "interactive_p50_s", "interactive_p99_s", "batch_makespan_s", "oom_events", "model_loads", "gpu_busy_pct", "jain_fairness", "decisions_per_s"] as const;
  const short = (r: ResultRow) => cols.map((c) => (r[c] === null ? "-" : String(r[c])));
  const cells = [cols.map((c) => c.replace(/_s$/, "").replace(/_/g, " ")) as string[], ...report.results.map(short)];
  const widths = cols.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  process.stdout.write(`${line(cells[0]!)}\n${cells.slice(1).map(line).join("\n")}\n\nmakespan / lower bound per suite (median, p90, max over its instances):\n`);
  for (const [suite, byPolicy] of Object.entries(report.suites)) {
    for (const [policy, s] of Object.entries(byPolicy)) process.stdout.write(`  ${suite.padEnd(12)} ${policy.padEnd(11)} n=${s.count} p50 ${s.p50} p90 ${s.p90} max ${s.max}\n`);
  }
  process.stdout.write(`\nTargets (seed ${seed}):\n`);
  const verdict = (met: boolean | null) => (met === null ? "n/a" : met ? "met" : "MISSED");
  for (const t of report.targets) {
    process.stdout.write(`  [${verdict(t.met)}] ${t.target}: ${t.detail}\n`);
    if (t.met_vs) process.stdout.write(`      against every baseline: ${Object.entries(t.met_vs).map(([b, m]) => `${b} ${verdict(m)}`).join(", ")}${t.beaten_by?.length ? `; better than gpufabric here: ${t.beaten_by.join(", ")}` : ""}\n`);
  }
  if (report.scale_cold_decisions_per_s !== null) process.stdout.write(`  (scale: first, cold pass ${report.scale_cold_decisions_per_s} decisions/s; measured passes ${report.scale_passes_decisions_per_s!.join(", ")})\n`);
  process.stdout.write(`\n${formatReference(reference)}`);
  process.stdout.write(`\n${formatElastic(elastic)}`);
  if (cost.relative) {
    const m = cost.relative.machine;
    process.stdout.write(`\nScheduler cost on scale: ${cost.scale_decisions_per_s} decisions/s on ${m.cpu_model} (${m.cores} cores, Node ${m.node}, load ${m.load_1m}); ${cost.relative.decisions_per_1k_reference_ops} decisions per 1,000 reference-loop heap operations (median of ${cost.relative.passes.length} passes: ${cost.relative.passes.map((p) => p.ratio).join(", ")}). Instructions per decision: npm run bench:scheduler-cost.\n`);
  }
}
