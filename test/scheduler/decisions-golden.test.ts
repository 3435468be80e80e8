/**
 * Pins the scheduler's decisions across commits: the digest of everything it says on seeded
 * scenarios, and on the simulator's studio-mixed workload, must match the golden file. A change that
 * is meant to alter decisions updates the file in the same commit (GPUFABRIC_UPDATE_GOLDEN=1 rewrites
 * it), so "same decisions" in a speed-up's message is something the tests check, not a claim.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createPolicy } from "../../runtime/sim/policies.ts";
import type { SimPolicy } from "../../runtime/sim/policy.ts";
import { simulate } from "../../runtime/sim/simulator.ts";
import type { Workload } from "../../runtime/sim/workload.ts";
import { studioMixedWorkload } from "../../runtime/sim/workloads/studio-mixed.ts";
import { TRACE_SCENARIOS, traceScenario } from "./decision-trace.ts";

const GOLDEN = fileURLToPath(new URL("./decisions.golden.json", import.meta.url));
const update = process.env.GPUFABRIC_UPDATE_GOLDEN === "1";
const golden: Record<string, unknown> = JSON.parse(readFileSync(GOLDEN, "utf8"));
const actual: Record<string, unknown> = {};

function check(name: string, value: unknown): void {
  actual[name] = value;
  if (update) writeFileSync(GOLDEN, `${JSON.stringify({ ...golden, ...actual }, null, 2)}\n`);
  else expect(value, `decisions of '${name}' changed: if that is intended, rerun with GPUFABRIC_UPDATE_GOLDEN=1 and commit the file`).toEqual(golden[name]);
}

/** The simulator's run of a workload with every step's decisions folded into a digest, and its --no-timing row. */
function simDigest(workload: Workload, seed: number) {
  // The same policy the simulator CLI and bench:scheduler build.
  const inner = createPolicy("gpufabric", workload, seed);
  const hash = createHash("sha256");
  const policy: SimPolicy = {
    name: inner.name,
    get decisionCount() {
      return inner.decisionCount;
    },
    submit: (run, now) => {
      const res = inner.submit(run, now);
      hash.update(`submit ${now} ${run.id} ${JSON.stringify(res)}\n`);
      return res;
    },
    step: (now) => {
      const step = inner.step(now);
      hash.update(`step ${now} ${JSON.stringify(step.decisions)}\n`);
      return step;
    },
    finished: (runId, stageId, now, outcome) => inner.finished(runId, stageId, now, outcome),
  };
  const { row } = simulate(workload, policy, { seed });
  return { digest: hash.digest("hex"), row };
}

describe("decisions pinned across commits", () => {
  for (const sc of TRACE_SCENARIOS) {
    it(`trace '${sc.name}' says exactly what it said before`, () => {
      check(`trace:${sc.name}`, traceScenario(sc));
    });
  }

  it("the simulator's studio-mixed run (seed 1) makes the same decisions and the same --no-timing row", () => {
    check("sim:studio-mixed:1", simDigest(studioMixedWorkload(1), 1));
  });
});
