/**
 * Scheduler benchmark: gpufabric against the baselines on the suite workloads.
 * Usage: npm run bench:scheduler [-- --json] [--seed N] [--no-timing]
 *
 * Same seed, same output: every figure comes from the simulator's clock except decisions_per_s
 * (wall time spent inside the policy); --no-timing prints it as null for byte-for-byte comparisons.
 * On `scale`, decisions_per_s is the steady state of a long-lived scheduler: the median of three passes
 * after a first, cold pass in this process (printed as scale_cold_decisions_per_s).
 * The WfCommons and ComfyUI workloads read the sample data set beside the checkout and are skipped,
 * with a note on stderr, when it is absent.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadWorkflowFile, stagesFor } from "../runtime/graph/index.ts";
import { stageSpecFromGraph } from "../runtime/scheduler/from-graph.ts";
import { createPolicy, type PolicyName } from "../runtime/sim/policies.ts";
import { simulate, type ResultRow } from "../runtime/sim/simulator.ts";
import type { Workload } from "../runtime/sim/workload.ts";
import { comfyuiWorkload, type NamedStages } from "../runtime/sim/workloads/comfyui.ts";
import { scaleWorkload } from "../runtime/sim/workloads/scale.ts";
import { studioMixedWorkload } from "../runtime/sim/workloads/studio-mixed.ts";
import { parseWfFormat, wfcommonsWorkload } from "../runtime/sim/workloads/wfcommons.ts";
import { checkTargets } from "./scheduler-targets.ts";

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

const rows: ResultRow[] = [];
const run = (workload: Workload, policies: readonly PolicyName[]) => {
  for (const name of policies) {
    const policy = createPolicy(name, workload, seed);
    const result = simulate(workload, policy, { seed, ...(timed ? { stopwatch: () => performance.now() } : {}) });
    rows.push(result.row);
    if (!json) process.stderr.write(`  ${workload.name} / ${name} done\n`);
  }
};

const ALL: readonly PolicyName[] = ["gpufabric", "fifo-job", "fifo-stage", "naive-stage"];

const wfDir = dataDir("wfinstances");
if (wfDir) {
  for (const file of readdirSync(wfDir).filter((f) => f.endsWith(".json")).sort()) {
    const problem = parseWfFormat(JSON.parse(readFileSync(`${wfDir}/${file}`, "utf8")), file);
    run(wfcommonsWorkload(problem, `wfcommons:${file}`, { seed, referenceSamples: 1000 }), ALL);
  }
}

const comfyDir = dataDir("comfyui");
if (comfyDir) {
  const workflows: NamedStages[] = [];
  for (const file of readdirSync(comfyDir).filter((f) => f.endsWith(".json")).sort()) {
    try {
      const graph = loadWorkflowFile(`${comfyDir}/${file}`);
      workflows.push({ name: graph.name, stages: stagesFor(graph).map(stageSpecFromGraph) });
    } catch (err) {
      process.stderr.write(`note: ${file} skipped: ${(err as Error).message.split("\n")[0]}\n`);
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
  if (!json) process.stderr.write(`  scale / gpufabric done (cold pass ${scaleColdDecisionsPerS}, then ${scalePassesDecisionsPerS.join(", ")} decisions/s)\n`);
} else {
  run(scaleWorkload(seed), ["gpufabric"]);
}

const targets = checkTargets(rows, timed);
if (json) {
  process.stdout.write(`${JSON.stringify({ seed, results: rows, scale_cold_decisions_per_s: scaleColdDecisionsPerS, scale_passes_decisions_per_s: timed ? scalePassesDecisionsPerS : null, targets }, null, 2)}\n`);
} else {
  const cols = ["workload", "policy", "makespan_s", "lower_bound_s", "best_known_s", "interactive_p50_s", "interactive_p99_s", "batch_makespan_s", "oom_events", "model_loads", "gpu_busy_pct", "jain_fairness", "decisions_per_s"] as const;
  const short = (r: ResultRow) => cols.map((c) => (r[c] === null ? "-" : String(r[c])));
  const cells = [cols.map((c) => c.replace(/_s$/, "").replace(/_/g, " ")) as string[], ...rows.map(short)];
  const widths = cols.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  process.stdout.write(`${line(cells[0]!)}\n${cells.slice(1).map(line).join("\n")}\n\nTargets (seed ${seed}):\n`);
  for (const t of targets) process.stdout.write(`  [${t.met === null ? "n/a" : t.met ? "met" : "MISSED"}] ${t.target}: ${t.detail}\n`);
  if (scaleColdDecisionsPerS !== null) process.stdout.write(`  (scale: first, cold pass ${scaleColdDecisionsPerS} decisions/s; measured passes ${scalePassesDecisionsPerS.join(", ")})\n`);
}
