/**
 * bench:scheduler's `elastic` section: on the bursty studio workload, an elastic pool (computeDemand drives
 * it, as the control plane's demand controller does) against the same nodes fixed at the elastic pool's
 * maximum (sized for the peak) and fixed at the average demand, side by side.
 *
 * Several seeded days, not one: an interactive p99 is the 6th slowest of some 500 runs in one day, so one
 * seed's verdict swings with where a session happens to start. The figures pool the days: GPU-hours and cost
 * are per day (mean), the latency percentiles are over every interactive run of every day.
 *
 * Targets: elastic uses at least 40% fewer GPU-hours than fixed-for-peak, its interactive p99 is within 1.5×
 * fixed-for-peak's and at most half of fixed-for-average's ("far below").
 * Deterministic: every figure comes from the simulator's clock.
 */
import { fixedPool, simulateElastic, type ElasticPoolSpec, type ElasticWorkload } from "../runtime/sim/elastic.ts";
import { percentile, round } from "../runtime/sim/metrics.ts";
import { BURSTY_POOL, studioBurstyWorkload, workGpuSeconds } from "../runtime/sim/workloads/studio-bursty.ts";

export const ELASTIC_DAYS = 5;

export interface ElasticBenchRow {
  readonly pool: "elastic" | "fixed-peak" | "fixed-average";
  /** Workers (nodes of the pool's shape): min–max for elastic, the fixed count otherwise (per day for average). */
  readonly workers: string;
  readonly gpu_hours_per_day: number | null;
  readonly cost_per_day: number | null;
  readonly interactive_p50_s: number | null;
  readonly interactive_p99_s: number | null;
  readonly interactive_queue_p99_s: number | null;
  readonly interactive_queue_mean_s: number | null;
  readonly batch_queue_mean_s: number | null;
  readonly runs_completed: number;
  readonly runs_submitted: number;
  readonly scale_ups: number;
  readonly drains: number;
  readonly stages_interrupted: number;
}

export interface ElasticTarget {
  readonly target: string;
  readonly met: boolean;
  readonly detail: string;
}

export interface ElasticComparison {
  readonly workload: string;
  readonly seeds: readonly number[];
  readonly pool: ElasticPoolSpec;
  readonly rows: readonly ElasticBenchRow[];
  readonly targets: readonly ElasticTarget[];
}

/** Fixed workers for the average demand: the workload's GPU-seconds spread over its horizon, in whole nodes. */
export function averageWorkers(workload: ElasticWorkload, pool: ElasticPoolSpec): number {
  return Math.max(1, Math.ceil(workGpuSeconds(workload) / workload.horizonS / pool.gpusPerWorker));
}

export function runElasticComparison(options: { readonly seed: number; readonly days?: number; readonly pool?: ElasticPoolSpec }): ElasticComparison {
  const pool = options.pool ?? BURSTY_POOL;
  const seeds = Array.from({ length: options.days ?? ELASTIC_DAYS }, (_, i) => options.seed + i);
  const acc = {
    elastic: collector(),
    "fixed-peak": collector(),
    "fixed-average": collector(),
  };
  const averages: number[] = [];
  for (const seed of seeds) {
    const workload = studioBurstyWorkload(seed);
    const avg = averageWorkers(workload, pool);
    averages.push(avg);
    const pools: [keyof typeof acc, ElasticPoolSpec][] = [
      ["elastic", pool],
      ["fixed-peak", fixedPool(pool, pool.maxWorkers)],
      ["fixed-average", fixedPool(pool, avg)],
    ];
    for (const [name, p] of pools) {
      const r = simulateElastic(workload, p, { seed, label: name });
      const c = acc[name];
      c.gpuHours += r.row.gpu_hours ?? 0;
      c.cost += r.row.cost ?? 0;
      c.latency.push(...r.interactiveRuns.map((x) => x.latencyS));
      c.queue.push(...r.interactiveQueueS);
      c.batchQueue.push(r.row.batch_queue_mean_s ?? 0);
      c.completed += r.row.runs_completed;
      c.submitted += r.row.runs_submitted;
      c.scaleUps += r.row.scale_ups;
      c.drains += r.row.drains;
      c.interrupted += r.row.stages_interrupted;
    }
  }
  const days = seeds.length;
  const workers = {
    elastic: `${pool.minWorkers}-${pool.maxWorkers}`,
    "fixed-peak": String(pool.maxWorkers),
    "fixed-average": [...new Set(averages)].join("/"),
  };
  const rows = (Object.keys(acc) as (keyof typeof acc)[]).map((name): ElasticBenchRow => {
    const c = acc[name];
    return {
      pool: name,
      workers: workers[name],
      gpu_hours_per_day: round(c.gpuHours / days, 2),
      cost_per_day: round(c.cost / days, 2),
      interactive_p50_s: round(percentile(c.latency, 50)),
      interactive_p99_s: round(percentile(c.latency, 99)),
      interactive_queue_p99_s: round(percentile(c.queue, 99)),
      interactive_queue_mean_s: round(c.queue.length === 0 ? null : c.queue.reduce((a, b) => a + b, 0) / c.queue.length),
      batch_queue_mean_s: round(c.batchQueue.reduce((a, b) => a + b, 0) / days),
      runs_completed: c.completed,
      runs_submitted: c.submitted,
      scale_ups: c.scaleUps,
      drains: c.drains,
      stages_interrupted: c.interrupted,
    };
  });
  return { workload: "studio-bursty", seeds, pool, rows, targets: judge(rows) };
}

function collector() {
  return { gpuHours: 0, cost: 0, latency: [] as number[], queue: [] as number[], batchQueue: [] as number[], completed: 0, submitted: 0, scaleUps: 0, drains: 0, interrupted: 0 };
}

function judge(rows: readonly ElasticBenchRow[]): ElasticTarget[] {
  const [elastic, peak, average] = rows as [ElasticBenchRow, ElasticBenchRow, ElasticBenchRow];
  const saving = 1 - elastic.gpu_hours_per_day! / peak.gpu_hours_per_day!;
  const vsPeak = elastic.interactive_p99_s! / peak.interactive_p99_s!;
  const vsAverage = elastic.interactive_p99_s! / average.interactive_p99_s!;
  const allDone = rows.every((r) => r.runs_completed === r.runs_submitted) && elastic.stages_interrupted === 0;
  return [
    {
      target: "elastic uses ≥ 40% fewer GPU-hours than fixed-for-peak",
      met: saving >= 0.4,
      detail: `${elastic.gpu_hours_per_day} vs ${peak.gpu_hours_per_day} GPU-hours a day (${round(100 * saving, 1)}% fewer)`,
    },
    {
      target: "elastic interactive p99 ≤ 1.5× fixed-for-peak's",
      met: vsPeak <= 1.5,
      detail: `${elastic.interactive_p99_s} s vs ${peak.interactive_p99_s} s (${round(vsPeak, 2)}×)`,
    },
    {
      target: "elastic interactive p99 far below fixed-for-average's (at most half)",
      met: vsAverage <= 0.5,
      detail: `${elastic.interactive_p99_s} s vs ${average.interactive_p99_s} s (${round(vsAverage, 2)}×)`,
    },
    {
      target: "no run lost and no stage interrupted by a scale-down",
      met: allDone,
      detail: `${elastic.runs_completed}/${elastic.runs_submitted} runs completed, ${elastic.stages_interrupted} stages interrupted`,
    },
  ];
}

export function formatElastic(c: ElasticComparison): string {
  const p = c.pool;
  const cols = ["pool", "workers", "gpu_hours_per_day", "cost_per_day", "interactive_p50_s", "interactive_p99_s", "interactive_queue_p99_s", "interactive_queue_mean_s", "batch_queue_mean_s", "scale_ups", "drains"] as const;
  const cells = [cols.map((x) => x.replace(/_s$/, "").replace(/_/g, " ")) as string[], ...c.rows.map((r) => cols.map((x) => (r[x] === null ? "-" : String(r[x]))))];
  const widths = cols.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((x, i) => (i < 2 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join("  ");
  const out = [
    `Elastic pools (${c.workload}, seeds ${c.seeds.join(", ")}; nodes of ${p.gpusPerWorker}x${p.model}-${p.memoryGiB}, ${p.provisionDelayS} s to provision, ${p.cooldownS} s cooldown, ${p.pricePerGpuHour} per GPU-hour):`,
    line(cells[0]!),
    ...cells.slice(1).map(line),
    "Elastic targets:",
    ...c.targets.map((t) => `  [${t.met ? "met" : "MISSED"}] ${t.target}: ${t.detail}`),
  ];
  return `${out.join("\n")}\n`;
}
