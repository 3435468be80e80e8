import type { Command } from "commander";
import cliProgress from "cli-progress";
import { parsePoolSpec } from "../../runtime/scheduler/inventory.ts";
import { POLICY_NAMES, createPolicy, isPolicyName } from "../../runtime/sim/policies.ts";
import { simulate, type ResultRow } from "../../runtime/sim/simulator.ts";
import { SUITE_WORKLOADS, loadWorkload } from "../../runtime/sim/workload-files.ts";
import { CliError, EXIT } from "../errors.ts";
import { runElasticSimulation } from "./simulate-elastic.ts";

interface SimulateOptions {
  workload: string;
  pool?: string;
  policy: string;
  runs?: string;
  seed: string;
  json?: boolean;
  elastic?: boolean;
  workers?: string;
  workerShape?: string;
  provisionDelay?: string;
  cooldown?: string;
  price?: string;
}

/** Runs with more arrivals than this show a progress bar (on a terminal). */
const PROGRESS_MIN_RUNS = 200;

function positiveInt(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${flag} must be a whole number >= ${min} (got '${value}')`, EXIT.usage);
  return n;
}

/** `gpufabric simulate`: capacity planning with the simulator, same figures as the benchmark. */
export function register(program: Command): void {
  program
    .command("simulate")
    .description("simulate a workload on a pool under a scheduling policy and report makespan, latency, OOMs, model loads, utilization and fairness")
    .requiredOption("--workload <file|name>", `suite workload (${SUITE_WORKLOADS.join(", ")}), WfCommons instance, workflow file or workload file`)
    .option("--pool <spec>", "GPUs as COUNTxMODEL-GiB[,…], e.g. 8xH100-80,16xA10G-24 (2x8xH100-80: 2 nodes of 8; :N sets GPUs per node)")
    .option("--policy <name>", `one of ${POLICY_NAMES.join(", ")}`, "gpufabric")
    .option("--runs <n>", "runs of a single workflow file to submit")
    .option("--seed <n>", "seed for arrivals and duration noise", "1")
    .option("--json", "print the result as JSON")
    .option("--elastic", "an elastic pool (workers come and go with demand) beside fixed pools sized for the peak and the average: GPU-hours, cost, interactive p99, queue time (suite workload studio-bursty)")
    .option("--workers <min-max>", "with --elastic: workers of the elastic pool, e.g. 2-8")
    .option("--worker-shape <spec>", "with --elastic: one worker's GPUs as GPUSxMODEL-GiB, e.g. 4xL40S-48")
    .option("--provision-delay <s>", "with --elastic: seconds from asking for a worker to its GPUs taking stages")
    .option("--cooldown <s>", "with --elastic: seconds of continuous surplus before idle workers are drained")
    .option("--price <n>", "with --elastic: price per GPU-hour")
    .action((options: SimulateOptions) => {
      if (options.elastic) {
        if (options.pool !== undefined || options.policy !== "gpufabric") throw new CliError("--elastic sizes its pool with --workers and --worker-shape and runs the gpufabric policy: drop --pool and --policy", EXIT.usage);
        const elasticRuns = positiveInt(options.runs, "--runs", 1);
        const { runs: _runs, seed: _seed, ...flags } = options;
        runElasticSimulation({ ...flags, seed: positiveInt(options.seed, "--seed", 0)!, ...(elasticRuns !== undefined ? { runs: elasticRuns } : {}) });
        return;
      }
      if (!isPolicyName(options.policy)) throw new CliError(`unknown policy '${options.policy}': use one of ${POLICY_NAMES.join(", ")}`, EXIT.usage);
      const seed = positiveInt(options.seed, "--seed", 0)!;
      const runs = positiveInt(options.runs, "--runs", 1);
      const gpus = options.pool !== undefined ? parsePoolSpec(options.pool, "--pool") : undefined;
      const workload = loadWorkload(options.workload, { seed, ...(gpus ? { gpus } : {}), ...(runs !== undefined ? { runs } : {}) });
      const policy = createPolicy(options.policy, workload, seed);
      const showProgress = process.stderr.isTTY === true && workload.arrivals.length > PROGRESS_MIN_RUNS;
      const bar = showProgress ? new cliProgress.SingleBar({ format: "simulating [{bar}] {value}/{total} runs", stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
      bar?.start(workload.arrivals.length, 0);
      const result = simulate(workload, policy, { seed, ...(bar ? { onProgress: (done: number) => bar.update(done) } : {}) });
      bar?.stop();
      const { row, details } = result;
      if (options.json) process.stdout.write(`${JSON.stringify({ ...row, runs_submitted: details.runsSubmitted, runs_completed: details.runsCompleted, runs_rejected: details.runsRejected, rejections: details.rejections }, null, 2)}\n`);
      else process.stdout.write(describe(row, details.runsSubmitted, details.runsCompleted, workload.gpus.length));
      if (details.runsRejected > 0) {
        const first = details.rejections[0]!;
        process.stderr.write(`gpufabric: ${details.runsRejected} run(s) rejected at submission, e.g. ${first.runId}: ${first.field}: ${first.message}\n`);
        process.exitCode = EXIT.failure;
      }
    });
}

function describe(row: ResultRow, submitted: number, completed: number, gpus: number): string {
  const s = (x: number | null, unit = " s") => (x === null ? "-" : `${x}${unit}`);
  return [
    `workload ${row.workload}, policy ${row.policy}, ${gpus} GPUs: ${completed}/${submitted} runs completed`,
    `  makespan            ${s(row.makespan_s)} (lower bound ${s(row.lower_bound_s)}${row.best_known_s !== null ? `, best known ${row.best_known_s} s` : ""})`,
    `  interactive latency p50 ${s(row.interactive_p50_s)}, p99 ${s(row.interactive_p99_s)}`,
    `  batch makespan      ${s(row.batch_makespan_s)}`,
    `  OOM events          ${row.oom_events}`,
    `  model loads         ${row.model_loads}`,
    `  GPU busy            ${s(row.gpu_busy_pct, " %")}`,
    `  Jain fairness       ${s(row.jain_fairness, "")} (weighted GPU-seconds while every tenant had work waiting)`,
    "",
  ].join("\n");
}
