/** The issue's targets, checked against benchmark rows: each met or missed, with the figures. */
import type { ResultRow } from "../runtime/sim/simulator.ts";
import { summary } from "../runtime/sim/metrics.ts";

export interface TargetCheck {
  readonly target: string;
  readonly met: boolean | null;
  readonly detail: string;
  /** The same figure against every baseline, as gpufabric / baseline (or baseline / gpufabric where larger is better for gpufabric, as the target states it). */
  readonly vs?: Readonly<Record<string, number | null>>;
  /** A suite's spread: count, true median, nearest-rank p90, maximum. */
  readonly spread?: ReturnType<typeof summary>;
}

const BASELINES = ["fifo-job", "fifo-stage", "naive-stage"] as const;

const row = (rows: readonly ResultRow[], workload: string, policy: string) => rows.find((r) => r.workload === workload && r.policy === policy);
const fmt = (x: number) => (Math.round(x * 1000) / 1000).toString();
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const describeVs = (vs: Readonly<Record<string, number | null>>) =>
  Object.entries(vs)
    .map(([name, x]) => `${name} ${x === null ? "n/a" : fmt(x)}`)
    .join(", ");

export function checkTargets(rows: readonly ResultRow[], timed: boolean): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const wf = rows.filter((r) => r.workload.startsWith("wfcommons:") && r.policy === "gpufabric");
  if (wf.length > 0) {
    const ratios = wf.map((r) => r.makespan_s! / r.lower_bound_s!);
    const spread = summary(ratios);
    // Each baseline's makespan on the same instances, as the median of gpufabric / baseline.
    const vs: Record<string, number | null> = {};
    for (const b of BASELINES) {
      const per = wf.flatMap((r) => {
        const other = row(rows, r.workload, b);
        return other?.makespan_s ? [r.makespan_s! / other.makespan_s] : [];
      });
      vs[b] = per.length === wf.length ? round3(summary(per).p50!) : null;
    }
    checks.push({
      target: "wfcommons: median makespan / lower bound <= 1.10",
      met: spread.p50! <= 1.1,
      detail: `median ${fmt(spread.p50!)}, p90 ${fmt(spread.p90!)}, max ${fmt(spread.max!)} over ${wf.length} instances; makespan / each baseline's (median): ${describeVs(vs)}`,
      vs,
      spread: { count: spread.count, p50: round3(spread.p50!), p90: round3(spread.p90!), max: round3(spread.max!) },
    });
    const worst = wf.map((r) => ({ w: r.workload, x: r.makespan_s! / r.best_known_s! })).sort((a, b) => b.x - a.x)[0]!;
    const over = wf.filter((r) => r.makespan_s! > 1.02 * r.best_known_s!);
    checks.push({
      target: "wfcommons: makespan <= 1.02 x best_known_s on every instance",
      met: over.length === 0,
      detail: `worst ${fmt(worst.x)} x best known (${worst.w})${over.length ? `; over on ${over.map((r) => r.workload).join(", ")}` : ""}`,
    });
  }
  const studio = (p: string) => row(rows, "studio-mixed", p);
  const g = studio("gpufabric");
  const job = studio("fifo-job");
  const stage = studio("fifo-stage");
  const naive = studio("naive-stage");
  if (g && job && stage && naive) {
    const baselines = { "fifo-job": job, "fifo-stage": stage, "naive-stage": naive };
    /** gpufabric's figure over each baseline's (or each baseline's over gpufabric's, `inverse`). */
    const against = (figure: (r: ResultRow) => number | null, inverse = false) =>
      Object.fromEntries(
        Object.entries(baselines).map(([name, b]) => {
          const mine = figure(g);
          const theirs = figure(b);
          const ratio = mine === null || theirs === null || (inverse ? mine : theirs) === 0 ? null : inverse ? theirs / mine : mine / theirs;
          return [name, ratio === null ? null : round3(ratio)];
        })
      );
    const p99 = g.interactive_p99_s! / job.interactive_p99_s!;
    const p99Vs = against((r) => r.interactive_p99_s);
    checks.push({
      target: "studio-mixed: interactive_p99_s <= 1/5 of fifo-job's",
      met: p99 <= 0.2,
      detail: `${fmt(g.interactive_p99_s!)} s vs ${fmt(job.interactive_p99_s!)} s (ratio ${fmt(p99)}); gpufabric / each baseline: ${describeVs(p99Vs)}`,
      vs: p99Vs,
    });
    const bm = job.batch_makespan_s! / g.batch_makespan_s!;
    const bmVs = against((r) => r.batch_makespan_s, true);
    checks.push({
      target: "studio-mixed: batch makespan <= fifo-job's / 1.5",
      met: bm >= 1.5,
      detail: `${fmt(g.batch_makespan_s!)} s vs ${fmt(job.batch_makespan_s!)} s (fifo-job / gpufabric = ${fmt(bm)}); each baseline / gpufabric: ${describeVs(bmVs)}`,
      vs: bmVs,
    });
    checks.push({
      target: "studio-mixed: oom_events = 0 while naive-stage shows some",
      met: g.oom_events === 0 && naive.oom_events > 0,
      detail: `gpufabric ${g.oom_events}, fifo-job ${job.oom_events}, fifo-stage ${stage.oom_events}, naive-stage ${naive.oom_events}`,
    });
    const loads = g.model_loads / stage.model_loads;
    const loadsVs = against((r) => r.model_loads);
    checks.push({
      target: "studio-mixed: model_loads <= half of fifo-stage's",
      met: loads <= 0.5,
      detail: `${g.model_loads} vs ${stage.model_loads} (ratio ${fmt(loads)}); gpufabric / each baseline: ${describeVs(loadsVs)}`,
      vs: loadsVs,
    });
    checks.push({ target: "studio-mixed: jain_fairness >= 0.95 while saturated", met: g.jain_fairness !== null && g.jain_fairness >= 0.95, detail: `${g.jain_fairness}` });
  }
  const scale = row(rows, "scale", "gpufabric");
  if (scale) {
    checks.push({
      target: "scale: >= 100,000 decisions per second on one core",
      met: timed ? (scale.decisions_per_s ?? 0) >= 100_000 : null,
      detail: timed ? `${scale.decisions_per_s} decisions/s (steady state: median of three passes after a warm-up pass)` : "not timed (--no-timing)",
    });
  }
  return checks;
}
