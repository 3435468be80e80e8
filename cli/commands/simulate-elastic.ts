/**
 * `gpufabric simulate --elastic`: the workload on an elastic pool (workers come up after the provisioning
 * delay when computeDemand asks, and go after the cooldown), beside the same nodes fixed at the maximum
 * (sized for the peak) and fixed at the average demand. Reports GPU-hours, cost, interactive latency and
 * queue time for each.
 */
import { fixedPool, simulateElastic, type ElasticPoolSpec, type ElasticRow, type ElasticWorkload } from "../../runtime/sim/elastic.ts";
import { loadWorkload } from "../../runtime/sim/workload-files.ts";
import { BURSTY_POOL, studioBurstyWorkload, workGpuSeconds } from "../../runtime/sim/workloads/studio-bursty.ts";
import { CliError, EXIT } from "../errors.ts";

export interface ElasticCliOptions {
  workload: string;
  seed: number;
  runs?: number;
  workers?: string;
  workerShape?: string;
  provisionDelay?: string;
  cooldown?: string;
  price?: string;
  json?: boolean;
}

const SHAPE = /^(\d+)x([A-Za-z][A-Za-z0-9_.]*)-(\d+(?:\.\d+)?)$/;

function nonNegative(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`${flag} must be a number >= 0 (got '${value}')`, EXIT.usage);
  return n;
}

/** The elastic pool from the flags, on top of the bursty studio pool's defaults. */
export function elasticPoolFromFlags(options: ElasticCliOptions): ElasticPoolSpec {
  let pool: ElasticPoolSpec = { ...BURSTY_POOL };
  if (options.workerShape !== undefined) {
    const m = SHAPE.exec(options.workerShape);
    if (!m || Number(m[1]) < 1) throw new CliError(`--worker-shape must be GPUSxMODEL-GiB, e.g. 4xL40S-48 (got '${options.workerShape}')`, EXIT.usage);
    pool = { ...pool, gpusPerWorker: Number(m[1]), model: m[2]!, memoryGiB: Number(m[3]) };
  }
  if (options.workers !== undefined) {
    const m = /^(\d+)-(\d+)$/.exec(options.workers);
    if (!m || Number(m[2]) < Math.max(1, Number(m[1]))) throw new CliError(`--workers must be MIN-MAX with MAX >= MIN and MAX >= 1, e.g. 0-8 (got '${options.workers}')`, EXIT.usage);
    pool = { ...pool, minWorkers: Number(m[1]), maxWorkers: Number(m[2]) };
  }
  return {
    ...pool,
    provisionDelayS: nonNegative(options.provisionDelay, "--provision-delay", pool.provisionDelayS),
    cooldownS: nonNegative(options.cooldown, "--cooldown", pool.cooldownS),
    pricePerGpuHour: nonNegative(options.price, "--price", pool.pricePerGpuHour),
  };
}

/** `studio-bursty`, or any workload `simulate` reads, paid for until its last arrival at least. */
function elasticWorkload(options: ElasticCliOptions): ElasticWorkload {
  if (options.workload === "studio-bursty") return studioBurstyWorkload(options.seed);
  const w = loadWorkload(options.workload, { seed: options.seed, ...(options.runs !== undefined ? { runs: options.runs } : {}) });
  const last = w.arrivals.length === 0 ? 0 : w.arrivals[w.arrivals.length - 1]!.at;
  return { name: w.name, tenants: w.tenants, arrivals: w.arrivals, noise: w.noise, horizonS: last, ...(w.settings ? { settings: w.settings } : {}) };
}

export function runElasticSimulation(options: ElasticCliOptions): void {
  const pool = elasticPoolFromFlags(options);
  const workload = elasticWorkload(options);
  const average = Math.min(pool.maxWorkers, Math.max(1, Math.ceil(workGpuSeconds(workload) / Math.max(1, workload.horizonS) / pool.gpusPerWorker)));
  let rows: ElasticRow[];
  try {
    rows = [
      simulateElastic(workload, pool, { seed: options.seed, label: "elastic" }).row,
      simulateElastic(workload, fixedPool(pool, pool.maxWorkers), { seed: options.seed, label: "fixed-peak" }).row,
      simulateElastic(workload, fixedPool(pool, average), { seed: options.seed, label: "fixed-average" }).row,
    ];
  } catch (err) {
    throw new CliError(`simulate --elastic: ${(err as Error).message}`, EXIT.usage);
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ workload: workload.name, seed: options.seed, pool, results: rows }, null, 2)}\n`);
    return;
  }
  const s = (x: number | null, unit = " s") => (x === null ? "-" : `${x}${unit}`);
  const lines = [
    `workload ${workload.name}, seed ${options.seed}: nodes of ${pool.gpusPerWorker}x${pool.model}-${pool.memoryGiB}, ${pool.provisionDelayS} s to provision, ${pool.cooldownS} s cooldown, ${pool.pricePerGpuHour} per GPU-hour`,
  ];
  for (const r of rows) {
    const workers = r.min_workers === r.max_workers ? `${r.max_workers} worker${r.max_workers === 1 ? "" : "s"}` : `${r.min_workers}-${r.max_workers} workers`;
    lines.push(
      `  ${r.pool.padEnd(13)} ${workers.padEnd(12)} ${s(r.gpu_hours, " GPU-hours")}, cost ${s(r.cost, "")}; interactive p50 ${s(r.interactive_p50_s)}, p99 ${s(r.interactive_p99_s)}; interactive queue p99 ${s(r.interactive_queue_p99_s)}, mean ${s(r.interactive_queue_mean_s)}; batch queue mean ${s(r.batch_queue_mean_s)}; ${r.runs_completed}/${r.runs_submitted} runs; ${r.scale_ups} scale-ups, ${r.drains} drains`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
