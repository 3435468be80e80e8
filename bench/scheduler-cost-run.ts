/**
 * The fixed workload bench:scheduler-cost counts instructions on: the `scale` workload (seed 1; its first `--runs` runs, 1,000 by default) under
 * gpufabric's scheduler, stopped once the scheduler has made `--decisions K` placements. Prints one
 * JSON line { decisions } and exits. Run as a plain process so callgrind counts only it.
 */
import { createPolicy } from "../runtime/sim/policies.ts";
import type { SimPolicy } from "../runtime/sim/policy.ts";
import { simulate } from "../runtime/sim/simulator.ts";
import { scaleWorkload } from "../runtime/sim/workloads/scale.ts";

const args = process.argv.slice(2);
const at = args.indexOf("--decisions");
const limit = at >= 0 ? Number(args[at + 1]) : NaN;
if (!Number.isInteger(limit) || limit < 0) {
  process.stderr.write("scheduler-cost-run: --decisions must be a non-negative integer (placements to make before stopping)\n");
  process.exit(2);
}

/** Thrown out of the simulator once the placement budget is spent: the rest of the run is not needed. */
class Enough extends Error {}

const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 1000;
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write("scheduler-cost-run: --runs must be a positive integer (runs of the scale workload to queue)\n");
  process.exit(2);
}
const seed = 1;
// The scale workload's pool and run mix, fewer runs queued: callgrind runs Node ~50x slower.
const workload = scaleWorkload(seed, runs);
const inner = createPolicy("gpufabric", workload, seed);
// The simulator drives the policy; this wrapper stops it after the step that reaches the budget
// (a step can place many stages, so the count printed is the real one, at least `limit`).
const policy: SimPolicy = {
  name: inner.name,
  get decisionCount() {
    return inner.decisionCount;
  },
  submit: (run, now) => inner.submit(run, now),
  step: (now) => {
    if (inner.decisionCount >= limit) throw new Enough();
    return inner.step(now);
  },
  finished: (runId, stageId, now, outcome) => inner.finished(runId, stageId, now, outcome),
};
try {
  simulate(workload, policy, { seed });
} catch (err) {
  if (!(err instanceof Enough)) throw err;
}
process.stdout.write(`${JSON.stringify({ decisions: inner.decisionCount })}\n`);
