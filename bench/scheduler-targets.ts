/**
 * The issue's targets, checked against benchmark rows: each met or missed, with the figures, and each
 * judged again against every baseline the simulator has, so no figure leans on one flattering baseline.
 */
import type { ResultRow } from "../runtime/sim/simulator.ts";
import { summary } from "../runtime/sim/metrics.ts";

export interface TargetCheck {
  readonly target: string;
  /** The target as stated (against the baseline it names, or an absolute bound). */
  readonly met: boolean | null;
  readonly detail: string;
  /** The figure against every baseline; `vs_meaning` says which way round and which way is better. */
  readonly vs?: Readonly<Record<string, number | null>>;
  readonly vs_meaning?: string;
  /**
   * The target judged against each baseline: a relative target (1/5 of, half of, 1.5x) with its own
   * threshold against that baseline; an absolute one as "gpufabric's figure is no worse than the
   * baseline's" (for the 1.02 x best-known target: within 1.02 x the baseline's schedule on every instance).
   */
  readonly met_vs?: Readonly<Record<string, boolean | null>>;
  /** Baselines whose figure is strictly better than gpufabric's on this target (empty when none). */
  readonly beaten_by?: readonly string[];
  /** A suite's spread: count, true median, nearest-rank p90, maximum. */
  readonly spread?: ReturnType<typeof summary>;
}

export const BASELINES = ["fifo-job", "fifo-stage", "naive-stage"] as const;

const row = (rows: readonly ResultRow[], workload: string, policy: string) => rows.find((r) => r.workload === workload && r.policy === policy);
const fmt = (x: number) => (Math.round(x * 1000) / 1000).toString();
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const describeVs = (vs: Readonly<Record<string, number | null>>) =>
  Object.entries(vs)
    .map(([name, x]) => `${name} ${x === null ? "n/a" : fmt(x)}`)
    .join(", ");
const perBaseline = <T>(f: (b: string) => T): Record<string, T> => Object.fromEntries(BASELINES.map((b) => [b, f(b)]));
const beaten = (better: Readonly<Record<string, boolean | null>>) => Object.entries(better).filter(([, x]) => x === true).map(([b]) => b);

export function checkTargets(rows: readonly ResultRow[], timed: boolean): TargetCheck[] {
  return [...wfcommonsTargets(rows), ...studioTargets(rows), ...scaleTargets(rows, timed)];
}

function wfcommonsTargets(rows: readonly ResultRow[]): TargetCheck[] {
  const wf = rows.filter((r) => r.workload.startsWith("wfcommons:") && r.policy === "gpufabric");
  if (wf.length === 0) return [];
  const ratios = wf.map((r) => r.makespan_s! / r.lower_bound_s!);
  const spread = summary(ratios);
  /** gpufabric's makespan / the baseline's on each instance (null when the baseline did not run on all). */
  const perInstance = (b: string) => {
    const per = wf.flatMap((r) => {
      const other = row(rows, r.workload, b);
      return other?.makespan_s ? [r.makespan_s! / other.makespan_s] : [];
    });
    return per.length === wf.length ? per : null;
  };
  const vs = perBaseline((b) => {
    const per = perInstance(b);
    return per === null ? null : round3(summary(per).p50!);
  });
  const lbMetVs = perBaseline((b) => (vs[b] === null || vs[b] === undefined ? null : vs[b]! <= 1));
  const lbBetter = perBaseline((b) => (vs[b] === null || vs[b] === undefined ? null : vs[b]! > 1));
  const checks: TargetCheck[] = [
    {
      target: "wfcommons: median makespan / lower bound <= 1.10",
      met: spread.p50! <= 1.1,
      detail: `median ${fmt(spread.p50!)}, p90 ${fmt(spread.p90!)}, max ${fmt(spread.max!)} over ${wf.length} instances; makespan / each baseline's (median): ${describeVs(vs)}`,
      vs,
      vs_meaning: "median over instances of gpufabric's makespan / the baseline's (lower is better for gpufabric)",
      met_vs: lbMetVs,
      beaten_by: beaten(lbBetter),
      spread: { count: spread.count, p50: round3(spread.p50!), p90: round3(spread.p90!), max: round3(spread.max!) },
    },
  ];
  const worst = wf.map((r) => ({ w: r.workload, x: r.makespan_s! / r.best_known_s! })).sort((a, b) => b.x - a.x)[0]!;
  const over = wf.filter((r) => r.makespan_s! > 1.02 * r.best_known_s!);
  // Every baseline's schedule is a known schedule too: the worst instance against each.
  const worstVs = perBaseline((b) => {
    const per = perInstance(b);
    return per === null ? null : round3(Math.max(...per));
  });
  const wins = perBaseline((b) => wf.filter((r) => (row(rows, r.workload, b)?.makespan_s ?? Infinity) < r.makespan_s!).map((r) => r.workload));
  checks.push({
    target: "wfcommons: makespan <= 1.02 x best_known_s on every instance",
    met: over.length === 0,
    detail: `worst ${fmt(worst.x)} x best known (${worst.w})${over.length ? `; over on ${over.map((r) => r.workload).join(", ")}` : ""}; worst makespan / each baseline's: ${describeVs(worstVs)}${Object.entries(wins)
      .filter(([, ws]) => ws.length > 0)
      .map(([b, ws]) => `; ${b} is shorter on ${ws.join(", ")}`)
      .join("")}`,
    vs: worstVs,
    vs_meaning: "the worst instance's gpufabric makespan / the baseline's (lower is better for gpufabric; above 1 the baseline won there)",
    met_vs: perBaseline((b) => (worstVs[b] === null ? null : worstVs[b]! <= 1.02)),
    beaten_by: Object.entries(wins)
      .filter(([, ws]) => ws.length > 0)
      .map(([b]) => b),
  });
  return checks;
}

function studioTargets(rows: readonly ResultRow[]): TargetCheck[] {
  const studio = (p: string) => row(rows, "studio-mixed", p);
  const g = studio("gpufabric");
  const job = studio("fifo-job");
  const stage = studio("fifo-stage");
  const naive = studio("naive-stage");
  if (!g || !job || !stage || !naive) return [];
  const baselines: Record<string, ResultRow> = { "fifo-job": job, "fifo-stage": stage, "naive-stage": naive };
  /** gpufabric's figure over each baseline's (or each baseline's over gpufabric's, `inverse`). */
  const against = (figure: (r: ResultRow) => number | null, inverse = false) =>
    perBaseline((name) => {
      const mine = figure(g);
      const theirs = figure(baselines[name]!);
      const ratio = mine === null || theirs === null || (inverse ? mine : theirs) === 0 ? null : inverse ? theirs / mine : mine / theirs;
      return ratio === null ? null : round3(ratio);
    });
  /** Which baselines do strictly better on a figure (`lowerIsBetter` as the figure reads). */
  const better = (figure: (r: ResultRow) => number | null, lowerIsBetter: boolean) =>
    beaten(
      perBaseline((name) => {
        const mine = figure(g);
        const theirs = figure(baselines[name]!);
        return mine === null || theirs === null ? null : lowerIsBetter ? theirs < mine : theirs > mine;
      })
    );
  const threshold = (vs: Record<string, number | null>, ok: (x: number) => boolean) => perBaseline((b) => (vs[b] === null ? null : ok(vs[b]!)));
  const checks: TargetCheck[] = [];

  const p99 = g.interactive_p99_s! / job.interactive_p99_s!;
  const p99Vs = against((r) => r.interactive_p99_s);
  checks.push({
    target: "studio-mixed: interactive_p99_s <= 1/5 of fifo-job's",
    met: p99 <= 0.2,
    detail: `${fmt(g.interactive_p99_s!)} s vs ${fmt(job.interactive_p99_s!)} s (ratio ${fmt(p99)}); gpufabric / each baseline: ${describeVs(p99Vs)}`,
    vs: p99Vs,
    vs_meaning: "gpufabric's interactive p99 / the baseline's (the target: <= 0.2)",
    met_vs: threshold(p99Vs, (x) => x <= 0.2),
    beaten_by: better((r) => r.interactive_p99_s, true),
  });
  const bm = job.batch_makespan_s! / g.batch_makespan_s!;
  const bmVs = against((r) => r.batch_makespan_s, true);
  checks.push({
    target: "studio-mixed: batch makespan <= fifo-job's / 1.5",
    met: bm >= 1.5,
    detail: `${fmt(g.batch_makespan_s!)} s vs ${fmt(job.batch_makespan_s!)} s (fifo-job / gpufabric = ${fmt(bm)}); each baseline / gpufabric: ${describeVs(bmVs)}`,
    vs: bmVs,
    vs_meaning: "the baseline's batch makespan / gpufabric's (the target: >= 1.5)",
    met_vs: threshold(bmVs, (x) => x >= 1.5),
    beaten_by: better((r) => r.batch_makespan_s, true),
  });
  checks.push({
    target: "studio-mixed: oom_events = 0 while naive-stage shows some",
    met: g.oom_events === 0 && naive.oom_events > 0,
    detail: `gpufabric ${g.oom_events}, fifo-job ${job.oom_events}, fifo-stage ${stage.oom_events}, naive-stage ${naive.oom_events}`,
    vs: perBaseline((b) => baselines[b]!.oom_events),
    vs_meaning: "the baseline's oom_events (gpufabric's must be 0)",
    met_vs: perBaseline((b) => g.oom_events <= baselines[b]!.oom_events),
    beaten_by: better((r) => r.oom_events, true),
  });
  const loads = g.model_loads / stage.model_loads;
  const loadsVs = against((r) => r.model_loads);
  checks.push({
    target: "studio-mixed: model_loads <= half of fifo-stage's",
    met: loads <= 0.5,
    detail: `${g.model_loads} vs ${stage.model_loads} (ratio ${fmt(loads)}); gpufabric / each baseline: ${describeVs(loadsVs)}`,
    vs: loadsVs,
    vs_meaning: "gpufabric's model loads / the baseline's (the target: <= 0.5)",
    met_vs: threshold(loadsVs, (x) => x <= 0.5),
    beaten_by: better((r) => r.model_loads, true),
  });
  const jainVs = against((r) => r.jain_fairness);
  checks.push({
    target: "studio-mixed: jain_fairness >= 0.95 while saturated",
    met: g.jain_fairness !== null && g.jain_fairness >= 0.95,
    detail: `${g.jain_fairness}; each baseline's: ${BASELINES.map((b) => `${b} ${baselines[b]!.jain_fairness ?? "n/a"}`).join(", ")}`,
    vs: jainVs,
    vs_meaning: "gpufabric's Jain index / the baseline's (higher is better for gpufabric)",
    met_vs: threshold(jainVs, (x) => x >= 1),
    beaten_by: better((r) => r.jain_fairness, false),
  });
  return checks;
}

function scaleTargets(rows: readonly ResultRow[], timed: boolean): TargetCheck[] {
  const scale = row(rows, "scale", "gpufabric");
  if (!scale) return [];
  return [
    {
      target: "scale: >= 100,000 decisions per second on one core",
      met: timed ? (scale.decisions_per_s ?? 0) >= 100_000 : null,
      // An absolute rate of gpufabric's own scheduler: the baselines are not run on `scale`.
      detail: timed ? `${scale.decisions_per_s} decisions/s (steady state: median of three passes after a warm-up pass)` : "not timed (--no-timing)",
    },
  ];
}
